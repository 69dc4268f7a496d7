"""openapi.json is the one description of the API: it is valid, and it cannot drift from the code or the README.

- its operations are exactly function_app's HTTP triggers (route, method, function key or anonymous);
- its status enum is model.Status plus the literal statuses the code answers (answer("duplicate", ...));
- the README's route table names the same operations and the same query parameters, and every query
  parameter the handlers read is described;
- the README's status table gives, for each status, exactly the HTTP codes the description allows it under;
- its examples are the test fixtures (real bodies), and validate against the schemas they illustrate.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import pytest
from conftest import FIXTURES, ROOT, fixture, functions
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from deskbridge.model import Status
from devtools import connector

SPEC_FILE = ROOT / "openapi.json"
SPEC = json.loads(SPEC_FILE.read_text())
README = (ROOT / "README.md").read_text()
KEY_SCHEMES = {"functionKey", "functionKeyQuery"}
METHODS = ("get", "post", "put", "patch", "delete")


def operations(spec: dict[str, Any] = SPEC):
    """(method, path, operation) for every operation, path as the README writes it (/api/...)."""
    base = "/api"
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), base + path, item[method]


def resolve(node: Any, spec: dict[str, Any] = SPEC) -> Any:
    return connector.resolve(spec, node)


def parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [resolve(p) for p in operation.get("parameters", [])]


def _local_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of the description: its #/components/... references resolve in place."""
    return Draft202012Validator({**schema, "components": SPEC["components"]})


# == the description itself ========================================================


def test_the_description_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    validate_spec(SPEC)


def test_the_description_ships_with_the_app():
    ignored = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()]
    assert not any(re.fullmatch(pattern.replace(".", r"\.").replace("*", ".*"), "openapi.json") for pattern in ignored)
    assert "connectors" in ignored  # the connector is for the maker portal, not the function app


def test_the_description_holds_no_setting_value():
    """It is served to any key holder: names of settings may appear, values never."""
    text = SPEC_FILE.read_text()
    for forbidden in ("127.0.0.1", "devstoreaccount1", "vault.azure.net", "whsec_", "AccountKey"):
        assert forbidden not in text


# == against the code ==============================================================


def http_triggers() -> dict[tuple[str, str], str]:
    found = {}
    for function in functions().values():
        trigger = json.loads(function.get_function_json())["bindings"][0]
        if trigger["type"] == "httpTrigger":
            for method in trigger["methods"]:
                found[(method.upper(), "/api/" + trigger["route"])] = trigger["authLevel"]
    return found


def test_every_registered_route_is_described_and_nothing_else():
    described = {(method, path) for method, path, _ in operations()}
    assert described == set(http_triggers())


def test_the_function_key_is_described_where_the_host_checks_it():
    triggers = http_triggers()
    for method, path, operation in operations():
        alternatives = operation.get("security", SPEC.get("security", []))
        if triggers[(method, path)] == "ANONYMOUS":
            assert alternatives == [], path
        else:
            assert alternatives and all(KEY_SCHEMES & set(alt) for alt in alternatives), path
            assert {s for alt in alternatives for s in alt} >= KEY_SCHEMES, path
    schemes = SPEC["components"]["securitySchemes"]
    assert (schemes["functionKey"]["in"], schemes["functionKey"]["name"]) == ("header", "x-functions-key")
    assert (schemes["functionKeyQuery"]["in"], schemes["functionKeyQuery"]["name"]) == ("query", "code")


def test_every_signature_header_the_bridge_checks_is_a_security_scheme():
    source = "".join(path.read_text() for path in sorted((ROOT / "deskbridge").glob("*.py")))
    checked = set(re.findall(r'_header\(headers, "([A-Za-z-]+)"\)', source))
    checked |= {h for h in re.findall(r'k\.lower\(\) == "([a-z-]+)"', source) if "signature" in h}
    schemes = {s["name"].lower() for s in SPEC["components"]["securitySchemes"].values() if s["in"] == "header"}
    header_params = {p["name"].lower() for p in SPEC["components"]["parameters"].values() if p["in"] == "header"}
    assert {"x-hub-signature", "webhook-signature", "signature"} <= schemes
    assert {h.lower() for h in checked} <= schemes | header_params, checked


def literal_statuses() -> set[str]:
    """Statuses the code answers that are not ledger statuses: answer("duplicate", ...) and the like."""
    found = set()
    for path in (ROOT / "deskbridge").glob("*.py"):
        found |= set(re.findall(r'\banswer\(\s*"([a-z_]+)"', path.read_text()))
    return found


def test_the_status_enum_is_every_status_the_code_can_answer():
    schemas = SPEC["components"]["schemas"]
    assert literal_statuses() >= {"duplicate", "unmatched", "unknown"}
    assert set(schemas["Status"]["enum"]) == {s.value for s in Status} | literal_statuses()
    assert set(schemas["LedgerStatus"]["enum"]) == {s.value for s in Status} - {Status.IGNORED.value}
    assert schemas["Health"]["properties"]["status"]["enum"] == ["ok"]
    assert '{"status": "ok", "version": __version__}' in (ROOT / "deskbridge" / "handlers.py").read_text()


def test_every_query_parameter_the_handlers_read_is_described():
    read = set()
    for path in [ROOT / "function_app.py", *(ROOT / "deskbridge").glob("*.py")]:
        read |= set(re.findall(r'\.params\.get\(\s*"([^"]+)"', path.read_text()))
    described = {p["name"] for _, _, op in operations() for p in parameters(op) if p["in"] == "query"}
    assert read <= described, read - described


# == against the README ============================================================


def readme_table(heading_row: str) -> list[list[str]]:
    lines = README.splitlines()
    start = lines.index(heading_row)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def readme_routes() -> dict[tuple[str, str], set[str]]:
    """(method, path) -> query parameters, from the README's route table (`POST /api/x?name=...`)."""
    routes = {}
    for cell, *_ in readme_table("| route | takes | notes |"):
        method, target = cell.strip("`").split(" ", 1)
        path, _, query = target.partition("?")
        routes[(method, path)] = {part.split("=")[0] for part in query.split("&") if part}
    return routes


def test_the_readme_route_table_is_the_description():
    described = {
        (method, path): {p["name"] for p in parameters(op) if p["in"] == "query"} for method, path, op in operations()
    }
    assert readme_routes() == described


def described_statuses() -> dict[str, set[int]]:
    """status -> HTTP codes it may come with, from every answer the description documents."""
    codes: dict[str, set[int]] = defaultdict(set)
    for _, _, operation in operations():
        for code, response in operation["responses"].items():
            schema = resolve(response)["content"]["application/json"]["schema"]
            for part in schema.get("allOf", []):
                for status in part.get("properties", {}).get("status", {}).get("enum", []):
                    codes[status].add(int(code))
            if resolve(schema) is SPEC["components"]["schemas"]["Health"]:
                codes["ok"].add(int(code))
    return dict(codes)


def test_the_readme_status_table_is_the_description():
    table = {}
    for names, http, _ in readme_table("| status | HTTP | meaning |"):
        for name in re.findall(r"`([a-z_]+)`", names):
            table[name] = {int(code) for code in re.findall(r"\b[1-5][0-9]{2}\b", http)}
    assert table == described_statuses()
    assert set(table) == set(SPEC["components"]["schemas"]["Status"]["enum"]) | {"ok"}


def test_every_answer_status_is_documented_under_some_code():
    assert set(described_statuses()) == set(SPEC["components"]["schemas"]["Status"]["enum"]) | {"ok"}


# == examples ======================================================================

EXAMPLE_FIXTURES = {
    ("/provision", "syskitJiraRule"): "syskit_jira_custom_body.json",
    ("/provision", "syskitServiceNowScript"): "syskit_servicenow_body.json",
    ("/jira", "adminWebhook"): "jira_webhook_approved.json",
    ("/jira", "automationJiraFormat"): "jira_automation_jira_format.json",
    ("/jira", "automationFormat"): "jira_automation_format.json",
    ("/servicenow", "runScript"): "servicenow_ritm.json",
    ("/point/events", "started"): "point_started.json",
    ("/point/events", "completed"): "point_completed.json",
    ("/point/events", "failed"): "point_failed.json",
}


def request_examples():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            body = item.get(method, {}).get("requestBody")
            if body:
                content = body["content"]["application/json"]
                for name, example in content.get("examples", {}).items():
                    yield path, name, example["value"], content["schema"]


def test_every_request_example_is_a_test_fixture():
    found = {(path, name): value for path, name, value, _ in request_examples()}
    assert set(found) == set(EXAMPLE_FIXTURES)
    for key, name in EXAMPLE_FIXTURES.items():
        assert found[key] == fixture(name), key
    assert {name for name in EXAMPLE_FIXTURES.values()} == {p.name for p in FIXTURES.glob("*.json")}


@pytest.mark.parametrize(("path", "name", "value", "schema"), list(request_examples()),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_request_examples_validate(path, name, value, schema):
    _local_validator(schema).validate(value)


def response_examples():
    for method, path, operation in operations():
        for code, response in operation["responses"].items():
            media = resolve(response)["content"]["application/json"]
            for name, example in media.get("examples", {}).items():
                yield f"{method} {path} {code} {name}", example["value"], media["schema"]


@pytest.mark.parametrize(("label", "value", "schema"), list(response_examples()),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_response_examples_validate(label, value, schema):
    _local_validator(schema).validate(value)


def test_a_schema_check_can_fail():
    """The validator used above refuses what the description forbids (no check that cannot fail)."""
    answer = SPEC["components"]["responses"]["Created"]["content"]["application/json"]["schema"]
    errors = list(_local_validator(answer).iter_errors({"status": "queued", "ticket": None, "pointRequestId": None,
                                                       "errors": [], "surprise": 1}))
    assert len(errors) == 2, errors
