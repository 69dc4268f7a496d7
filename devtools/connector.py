"""The Power Automate connector's Swagger 2.0 definition, made from openapi.json (the one description).

    python -m devtools.connector          writes connectors/power-automate/apiDefinition.swagger.json
    python -m devtools.connector --check  exits 1 if that file is not what openapi.json makes

The maker portal and ``paconn`` import Swagger 2.0 only, so the operations listed in
:data:`ACTIONS` are projected from OpenAPI 3.1: ``$ref`` to ``#/definitions``, a request body to a
``body`` parameter, nullable types to ``x-nullable``, a type list to its first type (the connector
sends the canonical form: ``templateId`` a number, ``owners`` a list), ``allOf`` merged into one
object (the designer offers every property as dynamic content). ``x-ms-summary`` and
``x-ms-visibility`` come from openapi.json as they are.

Adding an action: name its openapi.json operation in :data:`ACTIONS`. An action that is an existing
operation with a fixed query parameter (the preflight's ``?validate=true`` on ``POST /provision``)
needs a path of its own, since Swagger 2.0 allows one operation per path and method: give it
``path`` (a connector-only path), ``query`` (the fixed parameters) and ``operationId``/``summary``;
apiProperties.json then routes that path back to the real one with the ``routerequesttoendpoint``
and ``setqueryparameter`` policy templates (tests/test_connector.py checks the pairing). A fixed
query parameter is offered by no action (:data:`FIXED_QUERY`).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi.json"
SWAGGER = ROOT / "connectors" / "power-automate" / "apiDefinition.swagger.json"

# openapi.json operations offered as connector actions, in the designer's order.
ACTIONS: list[dict[str, Any]] = [
    {"operation": "ProvisionWorkspace"},
    {
        "operation": "ProvisionWorkspace",
        "operationId": "CheckRequest",
        "summary": "Check a request",
        "description": "Checks a workspace request as an approval would (mapping, e-mail addresses, templates and "
        "settings) and answers what would be sent to Syskit Point, or every error; nothing is recorded or sent.",
        "path": "/api/provision/check",
        "query": {"validate": "true"},
    },
    {"operation": "GetRequestStatus"},
]
# Parameters a connector cannot fill in: Standard Webhooks signing needs code the connector does not run.
OMITTED_PARAMETERS = {"webhook-id", "webhook-timestamp"}
# Query parameters an action fixes (apiProperties.json sets them): offered by no action, so that an action
# does what its name says ("Provision a workspace" never only checks, "Check a request" never provisions).
FIXED_QUERY = {name for action in ACTIONS for name in action.get("query", {})}
HOST = "contoso-deskbridge.azurewebsites.net"  # replaced per connection (apiProperties.json: dynamichosturl)
# The paths carry /api themselves (basePath "/"), so they stay right whether the host policy replaces
# only the host or the whole base URL.
BASE_PATH = "/api"
_SCHEMA_KEYS = (
    "type", "format", "description", "enum", "default", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "minItems", "maxItems", "items", "properties", "required", "additionalProperties", "x-ms-summary",
    "x-ms-visibility", "title",
)  # fmt: skip
_PARAMETER_KEYS = ("type", "format", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "default")


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """The node a local ``$ref`` (``#/components/...``) points at, following chains of them."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _first_type(types: Any) -> tuple[Any, bool]:
    """(the Swagger 2.0 type, nullable) of a JSON Schema type or type list."""
    if not isinstance(types, list):
        return types, False
    kept = [t for t in types if t != "null"]
    return (kept[0] if kept else None), "null" in types


def convert_schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.1 schema as Swagger 2.0 (see the module docstring)."""
    if "$ref" in schema:
        return {"$ref": schema["$ref"].replace("#/components/schemas/", "#/definitions/")}
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = resolve(spec, part)
            for key, value in part.items():
                if key == "properties":
                    properties = merged.setdefault("properties", {})
                    for name, prop in value.items():
                        base = resolve(spec, properties.get(name, {}))
                        properties[name] = {**base, **prop}
                else:
                    merged.setdefault(key, copy.deepcopy(value))
        return convert_schema(spec, merged)
    if "anyOf" in schema:  # only "a schema or null" is used where the connector reads it
        kept = [s for s in schema["anyOf"] if s != {"type": "null"}]
        if len(kept) != 1:
            raise ValueError(f"cannot express anyOf in Swagger 2.0: {schema}")
        return convert_schema(spec, {**kept[0], **{k: v for k, v in schema.items() if k != "anyOf"}})
    out: dict[str, Any] = {}
    kind, nullable = _first_type(schema.get("type"))
    for key in _SCHEMA_KEYS:
        if key in schema:
            out[key] = copy.deepcopy(schema[key])
    if kind is not None:
        out["type"] = kind
    if "examples" in schema and schema["examples"]:
        out["example"] = schema["examples"][0]
    if "enum" in out:
        python = {"string": str, "integer": int, "number": (int, float), "boolean": bool}.get(kind)
        values = [v for v in out["enum"] if v is not None and (python is None or isinstance(v, python))]
        if kind != "boolean" and values and all(type(v) is type(values[0]) for v in values):
            out["enum"] = values
        else:
            del out["enum"]
    if kind != "string":
        for key in ("pattern", "minLength", "maxLength", "format"):
            out.pop(key, None)
    if kind != "array":
        for key in ("items", "minItems", "maxItems"):
            out.pop(key, None)
    if kind not in ("integer", "number"):
        for key in ("minimum", "maximum"):
            out.pop(key, None)
    if "items" in out:
        out["items"] = convert_schema(spec, out["items"])
    if "properties" in out:
        out["properties"] = {name: convert_schema(spec, prop) for name, prop in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = convert_schema(spec, out["additionalProperties"])
    if nullable:
        out["x-nullable"] = True
    return out


def _operation(spec: dict[str, Any], operation_id: str) -> tuple[str, str, dict[str, Any]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return path, method, operation
    raise KeyError(f"openapi.json has no operation {operation_id}")


def _parameter(spec: dict[str, Any], parameter: dict[str, Any]) -> dict[str, Any]:
    parameter = resolve(spec, parameter)
    schema = convert_schema(spec, parameter["schema"])
    out = {"name": parameter["name"], "in": parameter["in"], "required": parameter.get("required", False)}
    out.update({k: schema[k] for k in _PARAMETER_KEYS if k in schema})
    for key in ("description", "x-ms-summary", "x-ms-visibility"):
        if key in parameter:
            out[key] = parameter[key]
    if "example" in parameter and out["in"] != "path":
        out["x-example"] = parameter["example"]
    return out


def build(spec: dict[str, Any]) -> dict[str, Any]:
    """The connector's apiDefinition.swagger.json for this openapi.json."""
    paths: dict[str, Any] = {}
    used: set[str] = set()
    for action in ACTIONS:
        path, method, operation = _operation(spec, action["operation"])
        parameters = [
            _parameter(spec, p)
            for p in operation.get("parameters", [])
            if resolve(spec, p)["name"] not in OMITTED_PARAMETERS | FIXED_QUERY
        ]
        body = operation.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            parameters.append(
                {
                    "name": "body",
                    "in": "body",
                    "required": body.get("required", False),
                    "description": body.get("description", ""),
                    "x-ms-summary": "Request",
                    "schema": convert_schema(spec, schema),
                }
            )
        responses = {}
        for code, response in operation["responses"].items():
            response = resolve(spec, response)
            converted: dict[str, Any] = {"description": response["description"]}
            content = response.get("content", {}).get("application/json")
            if content:
                converted["schema"] = convert_schema(spec, content["schema"])
            responses[code] = converted
        entry = {
            "operationId": action.get("operationId", operation["operationId"]),
            "summary": action.get("summary", operation["summary"]),
            "description": action.get("description", operation["description"]),
            "x-ms-visibility": "important",
            "parameters": parameters,
            "responses": responses,
        }
        paths.setdefault(action.get("path", BASE_PATH + path), {})[method] = entry
        used |= _definitions_used(entry)
    definitions: dict[str, Any] = {}
    pending = sorted(used)
    while pending:
        name = pending.pop()
        if name in definitions:
            continue
        definitions[name] = convert_schema(spec, spec["components"]["schemas"][name])
        pending.extend(sorted(_definitions_used(definitions[name]) - set(definitions)))
    info = spec["info"]
    return {
        "swagger": "2.0",
        "info": {
            "title": info["title"],
            "description": "Ask Syskit Point, through Point Desk Bridge, for a Microsoft 365 workspace once an "
            "approval is given, and follow the request until the workspace is ready.",
            "version": info["version"],
        },
        "host": HOST,
        "basePath": "/",
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": paths,
        "definitions": dict(sorted(definitions.items())),
        "parameters": {},
        "responses": {},
        "securityDefinitions": {
            "api_key": {
                "type": "apiKey",
                "in": "header",
                "name": spec["components"]["securitySchemes"]["functionKey"]["name"],
                "description": "A function key of the bridge's function app.",
            }
        },
        "security": [{"api_key": []}],
        "tags": [],
    }


def _definitions_used(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.removeprefix("#/definitions/"))
        for value in node.values():
            found |= _definitions_used(value)
    elif isinstance(node, list):
        for value in node:
            found |= _definitions_used(value)
    return found


def render(document: dict[str, Any]) -> str:
    """As the connector coding standard asks: four-space indentation, no trailing spaces."""
    return json.dumps(document, indent=4, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.connector", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    args = parser.parse_args(argv)
    text = render(build(json.loads(OPENAPI.read_text())))
    if args.check:
        if not SWAGGER.exists() or SWAGGER.read_text() != text:
            print(f"{SWAGGER.relative_to(ROOT)} is not what openapi.json makes: run python -m devtools.connector")
            return 1
        return 0
    SWAGGER.parent.mkdir(parents=True, exist_ok=True)
    SWAGGER.write_text(text)
    print(f"wrote {SWAGGER.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
