"""The bridge answers as openapi.json says: requests generated from the description, sent to the registered
functions (tests/wsgi_functions.py) against the local stack; every answer is checked against the description.

schemathesis makes the requests: schema-valid ones (positive) and ones that break the schema on purpose
(negative). Each answer must have a documented status code and content type, a body that validates
against the schema documented for that code, and never a 5xx other than a documented 503. The number
of examples per operation is bounded, so this runs in seconds; the total is printed.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from conftest import ROOT, functions
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from wsgi_functions import FunctionsWSGI

from deskbridge.auth import sign_point_event

EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}


class UndocumentedServerError(AssertionError):
    pass


def only_documented_503(ctx, response, case):
    """No 5xx from input but a documented 503 (a setting, Key Vault, Syskit Point down)."""
    if response.status_code >= 500 and response.status_code != 503:
        raise UndocumentedServerError(f"{case.method} {case.formatted_path} answered {response.status_code}")
    return None


CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance, only_documented_503]


def signer(point_key: str):
    """Sign Syskit Point events as Syskit Point does whenever the request names the algorithm, so generated
    events reach the event handling; without an Algorithm header they stay unsigned (and get 401)."""

    def sign(name: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        if name == "point_events" and any(k.lower() == "algorithm" for k in headers):
            headers = {k: v for k, v in headers.items() if k.lower() != "signature"}
            headers["Signature"] = sign_point_event(body, point_key)
        return headers

    return sign


def negatable(operation) -> bool:
    """Whether a request can break the schema: it has a body or a parameter."""
    raw = operation.definition.raw
    return bool(raw.get("requestBody") or raw.get("parameters"))


@pytest.fixture
def api(bridge):
    app = FunctionsWSGI(functions(), signer(bridge.stack.point.signature_key))
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return app, schema


def test_the_description_is_served_as_shipped(api):
    app, schema = api
    assert schema.raw_schema == json.loads((ROOT / "openapi.json").read_text())
    assert app.calls == [("openapi", 200)]


def send(operation, strategy, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        response = case.call()
        case.validate_response(response, checks=CHECKS)

    check()


def exercise(schema, plan: dict[str, dict[GenerationMode, int]]) -> None:
    """The documented examples of each operation first (fixtures: real bodies), then generated requests."""
    operations = {op.label: op for op in (result.ok() for result in schema.get_all_operations())}
    assert set(plan) <= set(operations), set(plan) - set(operations)
    for label, modes in plan.items():
        operation = operations[label]
        for strategy in operation.get_strategies_from_examples():
            send(operation, strategy, 1)
        for mode, examples in modes.items():
            if mode == GenerationMode.NEGATIVE and not negatable(operation):
                continue
            send(operation, operation.as_strategy(generation_mode=mode), examples)


def report(app, scenario: str, capsys) -> None:
    by_answer = Counter(f"{name} {status}" for name, status in app.calls)
    with capsys.disabled():
        print(f"\ncontract ({scenario}): {len(app.calls)} generated requests; {dict(sorted(by_answer.items()))}")


BOTH = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 25}
ALL_OPERATIONS = ["POST /provision", "POST /jira", "POST /servicenow", "POST /point/events",
                  "GET /requests/{source}/{ticket}", "GET /health"]


def test_every_generated_request_is_answered_as_described(api, bridge, capsys):
    app, schema = api
    bridge.configure(POINT_TEMPLATE_IDS="")  # any template reaches Syskit Point, which refuses unknown ones (422)
    app.calls.clear()
    exercise(schema, dict.fromkeys(ALL_OPERATIONS, BOTH))
    report(app, "as deployed", capsys)
    statuses = {status for _, status in app.calls}
    assert {200, 201, 400, 401, 404} <= statuses, statuses
    assert len(app.calls) >= 250


@pytest.mark.parametrize(("point_status", "answered"), [(422, 422), (503, 202), (429, 202)])
def test_answers_while_syskit_point_refuses_or_fails_are_as_described(api, bridge, capsys, point_status, answered):
    """Syskit Point refusing (rejected, 422) or failing (queued, 202): those answers match the description too.
    The documented examples (the fixtures) always reach Syskit Point, so each run sees the answer."""
    app, schema = api
    bridge.configure(POINT_RETRY_BUDGET_SECONDS="0.2")
    bridge.stack.point.fail_next(10_000, point_status, method="POST")
    app.calls.clear()
    positive = {GenerationMode.POSITIVE: 12}
    exercise(schema, {"POST /provision": positive, "POST /servicenow": positive,
                      "GET /requests/{source}/{ticket}": positive})
    report(app, f"Syskit Point answering {point_status}", capsys)
    assert ("provision", answered) in app.calls and ("servicenow", answered) in app.calls


def test_answers_without_settings_are_as_described(api, bridge, capsys):
    """A deployment missing its settings answers 503 naming them, as documented, on every route."""
    app, schema = api
    bridge.configure(POINT_URL=None, POINT_WEBHOOK_KEY_SECRET_NAME=None)
    app.calls.clear()
    exercise(schema, dict.fromkeys(ALL_OPERATIONS, {GenerationMode.POSITIVE: 10}))
    report(app, "settings missing", capsys)
    assert ("point_events", 503) in app.calls and ("provision", 503) in app.calls


# == what the contract test found ================================================


def test_a_missing_setting_refuses_before_anything_is_recorded(bridge):
    """Found by the settings-missing run: a 503 for a missing Syskit Point setting used to leave the ticket
    recorded as pending, so the same approval, once the setting was fixed, was answered 202 pending (after
    waiting out the retry budget) and never sent, until an operator replayed it."""
    from conftest import fixture

    body = fixture("syskit_jira_custom_body.json")
    bridge.configure(POINT_URL=None)
    status, answer = bridge.http("provision", body)
    assert (status, answer["status"], answer["errors"][0]["field"]) == (503, "failed", "POINT_URL")
    assert bridge.record("provision-jira", "MKT-7") is None
    bridge.configure(POINT_URL=bridge.stack.point.url)
    status, answer = bridge.http("provision", body)
    assert (status, answer["status"]) == (201, "submitted")
    assert len(bridge.stack.point.provision_calls()) == 1
