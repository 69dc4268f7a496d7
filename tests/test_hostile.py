"""Hostile input through the registered functions of every POST route: never a 5xx, never a Syskit Point
call for input the bridge refuses, always a JSON answer naming the field and the problem.

The strategies and the properties live in tests/strategies.py (bench/fuzz.py runs them longer).
The limits (body size, field lengths, owner and member counts) are checked at their edges here too.
"""

from __future__ import annotations

import base64
import json

import pytest
import strategies as hostile
from conftest import fixture, functions
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ALL = hostile.ROUTES
CI = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def ci(examples: int) -> settings:
    return settings(CI, max_examples=examples)


@pytest.fixture
def desk(bridge):
    """The bridge with the Jira field mapping the fixtures use, and the fixture's hidden owner known to Jira."""
    bridge.configure(**hostile.JIRA_FIELDS)
    bridge.stack.jira.add_user(*hostile.HIDDEN_OWNER)
    return bridge


def run(bridge, case: hostile.Case) -> hostile.Outcome:
    outcome = hostile.call(functions(), case, bridge.stack.point, bridge.stack.point.signature_key)
    hostile.check(case, outcome)
    return outcome


def raw_case(route: str, body: bytes, field: str, status: int = 400) -> hostile.Case:
    return hostile.Case(route, body, {"Content-Type": "application/json"}, field, (status,), "example")


# == properties ===================================================================


@pytest.mark.parametrize("route", ALL)
@ci(150)
@given(data=st.data())
def test_wrong_bodies_are_refused_by_name(desk, route, data):
    """Junk, invalid UTF-8, deep nesting, duplicate keys, wrong content types, NaN, 1e400, lone surrogates."""
    run(desk, data.draw(hostile.every_wrong_body(route)))


@pytest.mark.parametrize("route", ALL)
@ci(200)
@given(data=st.data())
def test_wrong_types_and_shapes_are_refused_by_name(desk, route, data):
    run(desk, data.draw(hostile.wrong_values(route)))


@pytest.mark.parametrize("route", ALL)
@ci(40)
@given(data=st.data())
def test_missing_fields_are_named(desk, route, data):
    run(desk, data.draw(hostile.missing_fields(route)))


@pytest.mark.parametrize("route", ALL)
@ci(60)
@given(data=st.data())
def test_huge_strings_are_refused_by_name(desk, route, data):
    run(desk, data.draw(hostile.huge_strings(route)))


@pytest.mark.parametrize("route", hostile.APPROVAL_ROUTES)
@ci(60)
@given(data=st.data())
def test_non_ascii_addresses_are_refused_by_name(desk, route, data):
    run(desk, data.draw(hostile.unicode_addresses(route)))


@pytest.mark.parametrize("route", ALL)
@ci(12)
@given(data=st.data())
def test_oversized_bodies_are_refused_before_parsing(desk, route, data):
    run(desk, data.draw(hostile.oversized(route)))


@pytest.mark.parametrize("route", ALL)
@ci(100)
@given(data=st.data())
def test_plausible_mutations_of_real_payloads_hold_the_properties(desk, route, data):
    """Unicode names, odd addresses, aliases: valid ones reach Syskit Point once, with the name as sent."""
    run(desk, data.draw(hostile.plausible(route)))


@ci(100)
@given(case=hostile.every_wrong_case("point_events") | hostile.plausible("point_events"))
def test_unsigned_point_events_are_refused_before_reading(desk, case):
    """Without Syskit Point's signature nothing of the body is read: 401 naming Signature (or 413)."""
    reads = len(desk.stack.vault.calls)
    headers = case.headers | {"Signature": "bm90IGEgc2lnbmF0dXJl", "Algorithm": "HMACSHA256"}
    unsigned = hostile.Case(case.route, case.body, headers, "Signature", (401,), "unsigned")
    if len(case.body) > hostile.MAX_BODY_BYTES:
        unsigned = hostile.Case(case.route, case.body, headers, "body", (413,), "unsigned-oversized")
    call = hostile.call(functions(), unsigned, desk.stack.point, "not-the-key")
    hostile.check(unsigned, call)
    assert len(desk.stack.vault.calls) - reads <= 2  # the key, read once and cached


@pytest.mark.parametrize("route", hostile.APPROVAL_ROUTES)
@ci(80)
@given(data=st.data())
def test_forged_signatures_are_refused_before_the_body_is_read(desk, route, data):
    for name in hostile.SIGNING_SECRET_NAMES.values():
        desk.stack.vault.set_secret(name, "whsec_" + base64.b64encode(name.encode() * 2).decode())
    if desk.settings.get("JIRA_WEBHOOK_SECRET_NAME") is None:
        desk.configure(**hostile.signing_settings())
    run(desk, data.draw(hostile.forged_signatures(route)))


@ci(60)
@given(case=hostile.bad_idempotency_keys())
def test_bad_idempotency_keys_are_refused_by_name(desk, case):
    run(desk, case)


# == regressions: inputs that once gave a 500 ======================================


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("provision", b'{"templateId": ' + b"1" * 5000 + b"}", "body"),  # int() digit limit: ValueError
        ("jira", b'{"\\ud800": 1, "\\ud800": 2}', "body"),  # the key echoed in the answer could not be encoded
        ("provision", b'{"displayName": "Lone \\udc00", "owners": ["a@contoso.com"]}', "displayName"),
        ("servicenow", b'{"number": "RITM1", "variables": {"site_name": "x\\ud83d"}}', "variables.site_name"),
        ("point_events", b'{"type": "ProvisioningCompleted", "content": {"name": "\\ud800"}}', "content.name"),
    ],
    ids=["5000-digit-number", "surrogate-duplicate-key", "surrogate-name", "half-emoji", "surrogate-event-name"],
)
def test_unencodable_json_is_refused_not_crashed_on(desk, route, body, field):
    run(desk, raw_case(route, body, field))


def test_an_infinite_number_never_reaches_syskit_point(desk):
    """1e400 parsed to inf; requests then refused to send it and the request stuck as 'uncertain'."""
    body = json.loads(json.dumps(fixture("syskit_servicenow_body.json")))
    raw = json.dumps(body)[:-1].encode() + b', "metadata": {"budget": 1e400}}'
    outcome = run(desk, raw_case("provision", raw, "body"))
    assert "too large" in outcome.body["errors"][0]["message"]


@pytest.mark.parametrize("ticket", ["A\u0085B", "RITM\u009f1", "X\u0080"])
def test_ticket_ids_azure_table_refuses_are_refused_first(desk, ticket):
    """C1 control characters passed the ticket check, then Azure Table answered 400 and the bridge 500."""
    body = fixture("syskit_servicenow_body.json") | {"ticket": {"source": "hr", "id": ticket}}
    run(desk, raw_case("provision", json.dumps(body).encode(), "ticket.id"))
    sn = fixture("servicenow_ritm.json") | {"number": ticket}
    run(desk, raw_case("servicenow", json.dumps(sn).encode(), "number"))


@example(case=raw_case("jira", b"\xef\xbb\xbf", "body"))
@ci(1)
@given(case=hostile.junk_bodies("jira"))
def test_a_bare_byte_order_mark_is_an_empty_body(desk, case):
    run(desk, case)


# == limits, enforced before work ====================================================


def _padded(payload: dict, size: int) -> bytes:
    raw = json.dumps(payload).encode()
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_body_size_is_checked_before_parsing_or_signature(desk):
    desk.configure(BRIDGE_MAX_BODY_BYTES="2048")
    body = fixture("syskit_servicenow_body.json") | {"ticket": {"source": "hr", "id": "SIZE-1"}}
    status, answer = desk.http("provision", _padded(body, 2048))
    assert status == 201, answer
    vault_calls = len(desk.stack.vault.calls)
    for route in ALL:
        # One byte too many, and not even JSON: the size is what the answer names.
        for raw in (_padded(body, 2049), b"{" * 2049, b"\xff" * 4000):
            outcome = run(desk, raw_case(route, raw, "body", 413))
            assert "2048" in outcome.body["errors"][0]["message"]
    assert len(desk.stack.point.provision_calls()) == 1
    assert len(desk.stack.vault.calls) == vault_calls  # no secret was read for a refused size


def test_the_body_size_setting_has_a_floor(desk):
    desk.configure(BRIDGE_MAX_BODY_BYTES="10")
    status, answer = desk.http("provision", fixture("syskit_servicenow_body.json"))
    assert status == 503 and answer["errors"][0]["field"] == "BRIDGE_MAX_BODY_BYTES"


@pytest.mark.parametrize(
    ("field", "limit", "unit"),
    [("displayName", 256, "X"), ("description", 4000, "d"), ("comment", 4000, "c"), ("desiredUrl", 100, "u")],
)
def test_string_fields_are_held_to_their_lengths(desk, field, limit, unit):
    base = fixture("syskit_servicenow_body.json")
    at_limit = base | {field: unit * limit, "ticket": {"source": "hr", "id": f"LEN-{field}"}}
    status, answer = desk.http("provision", at_limit)
    assert status == 201, answer
    over = base | {field: unit * (limit + 1), "ticket": {"source": "hr", "id": f"LEN-{field}-2"}}
    outcome = run(desk, raw_case("provision", json.dumps(over).encode(), field))
    assert str(limit) in outcome.body["errors"][0]["message"]


def test_addresses_ticket_ids_and_metadata_are_held_to_their_lengths(desk):
    base = fixture("syskit_servicenow_body.json")
    address = "o" * (254 - len("@contoso.com")) + "@contoso.com"
    ok = base | {"owners": [address], "ticket": {"source": "hr", "id": "T" * 128},
                 "metadata": {"notes": "m" * (16384 - 13)}}
    assert len(json.dumps(ok["metadata"])) == 16384
    status, answer = desk.http("provision", ok)
    assert status == 201, answer
    for change, field in (
        ({"owners": ["o" + address]}, "owners[0]"),
        ({"ticket": {"source": "hr", "id": "T" * 129}}, "ticket.id"),
        ({"metadata": {"notes": "m" * (16384 - 12)}}, "metadata"),
    ):
        run(desk, raw_case("provision", json.dumps(ok | change).encode(), field))


def _people(route: str, owners: list[str], members: list[str]) -> bytes:
    if route == "provision":
        body = fixture("syskit_servicenow_body.json") | {"owners": owners, "members": members,
                                                          "ticket": {"source": "hr", "id": f"P{len(owners)}"}}
    elif route == "servicenow":
        body = fixture("servicenow_ritm.json") | {"owners": owners, "members": members,
                                                  "number": f"RITM{len(owners)}{len(members)}"}
    else:
        body = fixture("jira_automation_jira_format.json")
        body["issue"]["key"] = f"HR-{len(owners)}{len(members)}"
        body["issue"]["fields"]["customfield_10060"] = [{"emailAddress": o} for o in owners]
        body["issue"]["fields"]["customfield_10061"] = [{"emailAddress": m} for m in members]
    return json.dumps(body).encode()


@pytest.mark.parametrize("route", hostile.APPROVAL_ROUTES)
def test_owner_and_member_counts_follow_the_settings(desk, route):
    desk.configure(BRIDGE_MAX_OWNERS="3", BRIDGE_MAX_MEMBERS="2")
    owners = [f"owner{i}@contoso.com" for i in range(4)]
    members = [f"member{i}@contoso.com" for i in range(3)]
    status, answer = desk.http(route, _people(route, owners[:3], members[:2]))
    assert status == 201, answer
    outcome = run(desk, raw_case(route, _people(route, owners, members[:2]), "owners"))
    assert "at most 3" in outcome.body["errors"][0]["message"]
    outcome = run(desk, raw_case(route, _people(route, owners[:2], members), "members"))
    assert "at most 2" in outcome.body["errors"][0]["message"]
    assert len(desk.stack.point.provision_calls()) == 1
