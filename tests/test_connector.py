"""connectors/power-automate: the Power Automate custom connector, checked as the maker portal and paconn would.

- apiDefinition.swagger.json is what openapi.json makes (devtools/connector.py), is valid Swagger 2.0,
  and validates against the Power Platform connector schema (tests/connector_schemas, see SOURCE.md);
- apiProperties.json validates against paconn's schema;
- the connector coding standard's rules hold (operationId in PascalCase, a summary and a description
  ending with a period on every operation, x-ms-summary on every parameter and property, 2xx responses
  with a schema, four-space indentation, no trailing spaces, a brand colour that is not a reserved one);
- every action agrees with its openapi.json operation: parameters, response codes, schemas.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from conftest import ROOT
from openapi_spec_validator import validate as validate_spec
from openapi_spec_validator.validation import OpenAPIV2SpecValidator

from devtools import connector

FOLDER = ROOT / "connectors" / "power-automate"
SCHEMAS = ROOT / "tests" / "connector_schemas"
SWAGGER_TEXT = (FOLDER / "apiDefinition.swagger.json").read_text()
SWAGGER = json.loads(SWAGGER_TEXT)
PROPERTIES_TEXT = (FOLDER / "apiProperties.json").read_text()
PROPERTIES = json.loads(PROPERTIES_TEXT)
OPENAPI = json.loads((ROOT / "openapi.json").read_text())


def swagger_operations():
    for path, item in SWAGGER["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def openapi_operation(operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if operation.get("operationId") == operation_id:
                return path, method, operation
    raise AssertionError(f"openapi.json has no {operation_id}")


resolve = connector.resolve


# == the files as tools read them ===================================================


def test_the_definition_is_what_openapi_json_makes():
    assert SWAGGER_TEXT == connector.render(connector.build(OPENAPI)), "run: python -m devtools.connector"
    assert connector.main(["--check"]) == 0


def test_the_definition_is_valid_swagger_2():
    assert SWAGGER["swagger"] == "2.0"
    validate_spec(SWAGGER, cls=OpenAPIV2SpecValidator)


def test_the_definition_validates_against_the_power_platform_schema():
    schema = json.loads((SCHEMAS / "apiDefinition.swagger.schema.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(SWAGGER)]
    assert errors == []


def test_the_properties_validate_against_paconns_schema():
    schema = json.loads((SCHEMAS / "paconn-apiProperties.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(PROPERTIES)]
    assert errors == []


def test_the_schemas_refuse_what_they_should():
    """The vendored schemas are live checks: an OpenAPI 3 document and an unknown property are refused."""
    definition = json.loads((SCHEMAS / "apiDefinition.swagger.schema.json").read_text())
    properties = json.loads((SCHEMAS / "paconn-apiProperties.schema.json").read_text())
    assert not jsonschema.Draft4Validator(definition).is_valid({"openapi": "3.1.0", "info": {}, "paths": {}})
    assert not jsonschema.Draft7Validator(properties).is_valid({"properties": {"iconBrandColor": "#0f6cbd", "x": 1}})


# == the connector coding standard ===================================================


@pytest.mark.parametrize("text", [SWAGGER_TEXT, PROPERTIES_TEXT], ids=["apiDefinition", "apiProperties"])
def test_files_are_indented_with_four_spaces_and_have_no_trailing_space(text):
    for number, line in enumerate(text.splitlines(), 1):
        assert "\t" not in line and line == line.rstrip(), number
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 4 == 0, number


def test_the_actions_are_the_ones_the_recipe_uses():
    actions = {op["operationId"]: op["summary"] for _, _, op in swagger_operations()}
    assert actions == {"ProvisionWorkspace": "Provision a workspace", "CheckRequest": "Check a request",
                       "GetRequestStatus": "Get request status"}
    assert not any("x-ms-trigger" in op for _, _, op in swagger_operations())  # see docs/power-automate.md


@pytest.mark.parametrize(("path", "method", "operation"), list(swagger_operations()),
                         ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_every_operation_follows_the_coding_standard(path, method, operation):
    assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", operation["operationId"])
    summary, description = operation["summary"], operation["description"]
    assert summary[0].isupper() and summary[1:] == summary[1:].lower() and not summary.endswith(".")
    assert len(summary) <= 80
    assert description.endswith(".") and description != summary
    codes = set(operation["responses"])
    assert codes != {"default"}
    assert any(code.startswith("2") and "schema" in response for code, response in operation["responses"].items())


def title_case(text: str) -> bool:
    small = {"a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "the", "to"}
    words = text.split()
    return bool(words) and all(w[0].isupper() or (i and w in small) for i, w in enumerate(words))


def test_every_parameter_has_a_title_and_a_description():
    for path, _, operation in swagger_operations():
        for parameter in operation["parameters"]:
            assert title_case(parameter.get("x-ms-summary", "")), (path, parameter["name"])
            assert parameter.get("description"), (path, parameter["name"])
            visibility = parameter.get("x-ms-visibility", "none")
            assert visibility in ("none", "important", "advanced", "internal")
            assert not (parameter["required"] and visibility == "internal" and "default" not in parameter)


def properties_without_title(schema: dict[str, Any], where: str) -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            continue
        if not title_case(prop.get("x-ms-summary", "")):
            missing.append(f"{where}.{name}")
        missing += properties_without_title(prop, f"{where}.{name}")
        if isinstance(prop.get("items"), dict):
            missing += properties_without_title(prop["items"], f"{where}.{name}[]")
    return missing


def test_every_property_has_a_title():
    missing = []
    for name, definition in SWAGGER["definitions"].items():
        missing += properties_without_title(definition, name)
    for path, _, operation in swagger_operations():
        for code, response in operation["responses"].items():
            missing += properties_without_title(response.get("schema", {}), f"{path} {code}")
    assert missing == []


def test_the_properties_follow_the_coding_standard():
    properties = PROPERTIES["properties"]
    colour = properties["iconBrandColor"]
    assert re.fullmatch(r"#[0-9a-f]{6}", colour) and colour not in ("#007ee5", "#ffffff")
    parameters = properties["connectionParameters"]
    assert parameters["api_key"]["type"] == "securestring"
    assert parameters["api_key"]["uiDefinition"]["constraints"]["clearText"] is False
    used = set()
    for policy in properties["policyTemplateInstances"]:
        used |= set(re.findall(r"@connectionParameters\('([^']+)'\)", json.dumps(policy)))
    assert used == set(parameters) - {"api_key"}  # every other parameter feeds a policy, and exists


# == agreement with openapi.json =====================================================


def test_the_function_key_is_the_connection_key():
    assert SWAGGER["securityDefinitions"] == {"api_key": {"type": "apiKey", "in": "header",
                                                          "name": OPENAPI["components"]["securitySchemes"]
                                                          ["functionKey"]["name"],
                                                          "description": "A function key of the bridge's "
                                                          "function app."}}
    assert SWAGGER["security"] == [{"api_key": []}]


def routed_paths() -> dict[str, str]:
    """Connector-only paths and where apiProperties.json routes them (routerequesttoendpoint)."""
    routes = {}
    by_id = {op["operationId"]: path for path, _, op in swagger_operations()}
    for policy in PROPERTIES["properties"]["policyTemplateInstances"]:
        if policy["templateId"].lower() == "routerequesttoendpoint":
            for operation_id in policy["parameters"]["x-ms-apimTemplate-operationName"]:
                routes[by_id[operation_id]] = policy["parameters"]["x-ms-apimTemplateParameter.newPath"]
    return routes


def shape(document: dict[str, Any], schema: Any, depth: int = 0) -> Any:
    """What a client relies on in a schema: property names, required ones, and each one's types."""
    schema = resolve(document, schema)
    if depth > 8:
        return "..."
    if "allOf" in schema:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in schema["allOf"]:
            part = resolve(document, part)
            for name, prop in part.get("properties", {}).items():
                merged["properties"][name] = {**resolve(document, merged["properties"].get(name, {})), **prop}
            merged["required"] += part.get("required", [])
            merged.setdefault("type", part.get("type"))
        schema = merged
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s != {"type": "null"})
        schema = resolve(document, schema)
    kind = schema.get("type")
    kinds = set(kind) - {"null"} if isinstance(kind, list) else {kind}
    out: dict[str, Any] = {"types": kinds}
    if "properties" in schema:
        out["properties"] = {n: shape(document, p, depth + 1) for n, p in schema["properties"].items()}
        out["required"] = sorted(set(schema.get("required", [])))
    if isinstance(schema.get("items"), dict):
        out["items"] = shape(document, schema["items"], depth + 1)
    return out


def compatible(connector_shape: Any, openapi_shape: Any, where: str = "") -> list[str]:
    """The connector's shape is the description's, with one type chosen where the description allows several."""
    if connector_shape == "..." or openapi_shape == "...":
        return []
    problems = []
    if not connector_shape["types"] <= openapi_shape["types"] or len(connector_shape["types"]) != 1:
        problems.append(f"{where}: {connector_shape['types']} not one of {openapi_shape['types']}")
    for key in ("required",):
        if connector_shape.get(key) != openapi_shape.get(key) and "object" in connector_shape["types"]:
            problems.append(f"{where}: required {connector_shape.get(key)} != {openapi_shape.get(key)}")
    names_c, names_o = set(connector_shape.get("properties", {})), set(openapi_shape.get("properties", {}))
    if "object" in connector_shape["types"] and names_c != names_o:
        problems.append(f"{where}: properties {sorted(names_c ^ names_o)} differ")
    for name in names_c & names_o:
        inner_c, inner_o = connector_shape["properties"][name], openapi_shape["properties"][name]
        problems += compatible(inner_c, inner_o, f"{where}.{name}")
    if "items" in connector_shape and "items" in openapi_shape:
        problems += compatible(connector_shape["items"], openapi_shape["items"], f"{where}[]")
    return problems


@pytest.mark.parametrize(("path", "method", "operation"), list(swagger_operations()),
                         ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_every_action_agrees_with_openapi_json(path, method, operation):
    made_from = {a.get("operationId", a["operation"]): a["operation"] for a in connector.ACTIONS}
    openapi_path, openapi_method, described = openapi_operation(made_from[operation["operationId"]])
    assert method == openapi_method
    assert routed_paths().get(path, path) == connector.BASE_PATH + openapi_path
    described_parameters = [resolve(OPENAPI, p) for p in described.get("parameters", [])]
    expected = {(p["name"], p["in"], p.get("required", False)) for p in described_parameters
                if p["name"] not in connector.OMITTED_PARAMETERS | connector.FIXED_QUERY}
    if "requestBody" in described:
        expected.add(("body", "body", described["requestBody"].get("required", False)))
    assert {(p["name"], p["in"], p["required"]) for p in operation["parameters"]} == expected
    assert set(operation["responses"]) == set(described["responses"])
    problems = []
    for code, response in operation["responses"].items():
        openapi_schema = resolve(OPENAPI, described["responses"][code])["content"]["application/json"]["schema"]
        problems += compatible(shape(SWAGGER, response["schema"]), shape(OPENAPI, openapi_schema), f"{code}")
    body = next((p for p in operation["parameters"] if p["in"] == "body"), None)
    if body:
        openapi_body = described["requestBody"]["content"]["application/json"]["schema"]
        problems += compatible(shape(SWAGGER, body["schema"]), shape(OPENAPI, openapi_body), "body")
    assert problems == []


def test_a_fixed_query_parameter_is_set_by_a_policy_for_its_action_alone():
    """"Check a request" is ProvisionWorkspace with ?validate=true: its own path, routed back, the flag set."""
    policies = PROPERTIES["properties"]["policyTemplateInstances"]
    fixed = [a for a in connector.ACTIONS if a.get("query")]
    assert [a["operationId"] for a in fixed] == ["CheckRequest"]
    for action in fixed:
        _, _, described = openapi_operation(action["operation"])
        names = {resolve(OPENAPI, p)["name"] for p in described.get("parameters", [])}
        for name, value in action["query"].items():
            assert name in names  # a parameter the operation describes
            [policy] = [p for p in policies if p["templateId"] == "setqueryparameter"
                        and p["parameters"]["x-ms-apimTemplateParameter.name"] == name]
            assert policy["parameters"]["x-ms-apimTemplateParameter.value"] == value
            assert policy["parameters"]["x-ms-apimTemplateParameter.existsAction"] == "override"
            assert policy["parameters"]["x-ms-apimTemplate-operationName"] == [action["operationId"]]
        assert action["path"] in routed_paths()
    offered = {p["name"] for _, _, op in swagger_operations() for p in op["parameters"]}
    assert offered.isdisjoint(connector.FIXED_QUERY)  # "Provision a workspace" cannot be made to only check


def test_the_omitted_parameters_are_only_signature_headers():
    """The connector leaves out what it cannot compute (Standard Webhooks signing), nothing else."""
    signature_params = {p["name"] for p in OPENAPI["components"]["parameters"].values()
                        if p["name"].startswith("webhook-")}
    assert connector.OMITTED_PARAMETERS == signature_params
