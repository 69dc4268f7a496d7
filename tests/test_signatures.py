"""Caller authentication per route: Jira X-Hub-Signature, Standard Webhooks on /api/servicenow and
/api/provision, Syskit Point's Signature on /api/point/events; the *_REQUIRE_SIGNATURE settings;
and deskbridge.auth on its own.

Secrets live in the Key Vault stand-in; the bridge reads them by the names its settings give.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid

import pytest
from conftest import fixture

from deskbridge import auth
from deskbridge.auth import SignatureError

JIRA_FIELDS = {
    "JIRA_FIELD_DISPLAY_NAME": "customfield_10054",
    "JIRA_FIELD_DESCRIPTION": "description",
    "JIRA_FIELD_OWNERS": "customfield_10060",
    "JIRA_FIELD_MEMBERS": "customfield_10061",
}
SIGNED_ROUTES = {"servicenow": "SERVICENOW", "provision": "PROVISION"}


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def body_for(route: str, ticket: str = "") -> bytes:
    if route == "servicenow":
        payload = fixture("servicenow_ritm.json")
        # A ServiceNow number is letters, then digits: a test's ticket name becomes one (NOSIG-1: RITMNOSIG1).
        payload["number"] = "RITM" + ticket.replace("-", "") if ticket else "RITM0010452"
    elif route == "provision":
        payload = fixture("syskit_servicenow_body.json") | {"ticket": {"source": "hr", "id": ticket or "HR-1"}}
    else:
        payload = fixture("jira_automation_jira_format.json")
        payload["issue"]["key"] = ticket or "HR-43"
    return json.dumps(payload).encode()


def standard_headers(body: bytes, secret: str, *, webhook_id: str = "", timestamp: int | None = None) -> dict:
    return {"Content-Type": "application/json"} | auth.sign_standard_webhook(
        body, secret, webhook_id or f"msg_{uuid.uuid4().hex}", int(time.time()) if timestamp is None else timestamp
    )


def errors_of(answer: dict) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in answer["errors"]]


@pytest.fixture
def jira_signed(bridge):
    secret = "jira-" + secrets.token_urlsafe(16)
    bridge.stack.vault.set_secret("jira-webhook-secret", secret)
    bridge.configure(JIRA_WEBHOOK_SECRET_NAME="jira-webhook-secret", **JIRA_FIELDS)
    return bridge, secret


def standard_signed(bridge, route: str) -> str:
    secret = whsec()
    bridge.stack.vault.set_secret(f"{route}-signing", secret)
    bridge.configure(**{f"{SIGNED_ROUTES[route]}_SIGNING_SECRET_NAME": f"{route}-signing"})
    return secret


# == Jira: X-Hub-Signature =====================================================


def test_jira_signed_with_the_webhook_secret_is_accepted(jira_signed):
    bridge, secret = jira_signed
    body = body_for("jira")
    status, answer = bridge.http("jira", body, headers={"X-Hub-Signature": auth.sign_hub(body, secret)})
    assert status == 201, answer
    assert len(bridge.stack.point.provision_calls()) == 1
    assert bridge.stack.vault.reads("jira-webhook-secret")


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        (None, "missing"),
        ("sha256=" + "0" * 64, "does not match"),
        ("sha1=" + "0" * 40, "sha256=<hex>"),
        ("sha256=", "sha256=<hex>"),
        ("sha256=zzzz\u00e9", "does not match"),
    ],
)
def test_jira_without_a_good_signature_is_401_and_reaches_nothing(jira_signed, signature, problem):
    bridge, _ = jira_signed
    headers = {} if signature is None else {"X-Hub-Signature": signature}
    status, answer = bridge.http("jira", body_for("jira"), headers=headers)
    assert status == 401
    [(field, message)] = errors_of(answer)
    assert field == "signature" and problem in message
    assert bridge.stack.point.provision_calls() == [] and bridge.stack.jira.calls == []


def test_jira_signed_with_another_secret_or_for_another_body_is_refused(jira_signed):
    bridge, secret = jira_signed
    body = body_for("jira")
    for signature in (auth.sign_hub(body, secret + "x"), auth.sign_hub(body[:-1] + b" ", secret)):
        status, answer = bridge.http("jira", body, headers={"X-Hub-Signature": signature})
        assert (status, errors_of(answer)[0][0]) == (401, "signature")
    changed = body.replace(b"HR-43", b"HR-44")  # one byte
    assert len(changed) == len(body) and sum(a != b for a, b in zip(changed, body, strict=True)) == 1
    status, _ = bridge.http("jira", changed, headers={"X-Hub-Signature": auth.sign_hub(body, secret)})
    assert status == 401
    assert bridge.stack.point.provision_calls() == []


def test_jira_accepts_upper_case_hex(jira_signed):
    bridge, secret = jira_signed
    body = body_for("jira")
    signature = "SHA256=" + auth.sign_hub(body, secret).split("=", 1)[1].upper()
    status, answer = bridge.http("jira", body, headers={"X-Hub-Signature": signature})
    assert status == 201, answer


def test_jira_rotation_accepts_either_of_two_secrets(bridge):
    old, new = "old-" + secrets.token_urlsafe(16), "new-" + secrets.token_urlsafe(16)
    bridge.stack.vault.set_secret("jira-webhook-old", old)
    bridge.stack.vault.set_secret("jira-webhook-new", new)
    bridge.configure(JIRA_WEBHOOK_SECRET_NAME="jira-webhook-old, jira-webhook-new", **JIRA_FIELDS)
    for n, secret in enumerate((old, new)):
        body = body_for("jira", f"HR-{50 + n}")
        status, answer = bridge.http("jira", body, headers={"X-Hub-Signature": auth.sign_hub(body, secret)})
        assert status == 201, answer
    body = body_for("jira", "HR-52")
    status, _ = bridge.http("jira", body, headers={"X-Hub-Signature": auth.sign_hub(body, "a third secret")})
    assert status == 401
    assert len(bridge.stack.point.provision_calls()) == 2


# == Standard Webhooks: /api/servicenow and /api/provision =====================


@pytest.mark.parametrize("route", SIGNED_ROUTES)
def test_standard_webhook_signed_now_is_accepted_once(bridge, route):
    secret = standard_signed(bridge, route)
    body = body_for(route)
    headers = standard_headers(body, secret)
    status, answer = bridge.http(route, body, headers=headers)
    assert status == 201, answer
    status, answer = bridge.http(route, body, headers=headers)  # the same delivery again: a replay
    assert status == 409
    assert errors_of(answer) == [("webhook-id", "this delivery was already received (replay)")]
    other = body_for(route, "OTHER-1")  # even re-signed for another body, the id is spent
    status, _ = bridge.http(route, other, headers=standard_headers(other, secret, webhook_id=headers["webhook-id"]))
    assert status == 409
    assert len(bridge.stack.point.provision_calls()) == 1


@pytest.mark.parametrize("route", SIGNED_ROUTES)
@pytest.mark.parametrize(
    ("age", "accepted", "problem"),
    [(240, True, ""), (-240, True, ""), (360, False, "more than 5 minutes old"),
     (-360, False, "more than 5 minutes in the future"), (86400, False, "more than 5 minutes old")],
)
def test_standard_webhook_tolerance_is_five_minutes(bridge, route, age, accepted, problem):
    secret = standard_signed(bridge, route)
    body = body_for(route)
    status, answer = bridge.http(route, body, headers=standard_headers(body, secret, timestamp=int(time.time()) - age))
    if accepted:
        assert status == 201, answer
    else:
        assert status == 401 and errors_of(answer) == [("signature", f"webhook-timestamp is {problem}")]
        assert bridge.stack.point.provision_calls() == []


@pytest.mark.parametrize("route", SIGNED_ROUTES)
def test_standard_webhook_wrong_secret_changed_body_and_missing_headers_are_401(bridge, route):
    secret = standard_signed(bridge, route)
    body = body_for(route)
    changed = bytearray(body)
    changed[body.index(b'"owners"') + 1] ^= 0x20  # "owners" -> "Owners": one byte
    cases = [
        (body, standard_headers(body, whsec()), "webhook-signature does not match"),
        (bytes(changed), standard_headers(body, secret), "webhook-signature does not match"),
        (body, {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}, "webhook-signature"),
        (body, {"webhook-signature": "v1,AAAA"}, "webhook-id, webhook-timestamp"),
        (body, standard_headers(body, secret) | {"webhook-signature": "v2,abc"}, "'v1,<base64"),
        (body, standard_headers(body, secret) | {"webhook-timestamp": "1.7e9"}, "whole seconds"),
        (body, standard_headers(body, secret) | {"webhook-id": "x" * 201}, "at most 200"),
        (body, {}, "missing header(s)"),
    ]
    for sent, headers, problem in cases:
        status, answer = bridge.http(route, sent, headers=headers)
        assert status == 401, (problem, answer)
        [(field, message)] = errors_of(answer)
        assert field == "signature" and problem in message, message
    assert bridge.stack.point.provision_calls() == []


@pytest.mark.parametrize("route", SIGNED_ROUTES)
def test_standard_webhook_rotation_accepts_the_second_secret(bridge, route):
    old, new = whsec(), whsec()
    prefix = SIGNED_ROUTES[route]
    bridge.stack.vault.set_secret("signing-old", old)
    bridge.stack.vault.set_secret("signing-new", new)
    bridge.configure(**{f"{prefix}_SIGNING_SECRET_NAME": "signing-old,signing-new"})
    for n, secret in enumerate((old, new)):
        body = body_for(route, f"RITM00{n}")
        status, answer = bridge.http(route, body, headers=standard_headers(body, secret))
        assert status == 201, answer
    assert len(bridge.stack.point.provision_calls()) == 2


def test_a_secret_for_one_route_does_not_sign_another(bridge):
    provision_secret = standard_signed(bridge, "provision")
    servicenow_secret = whsec()
    bridge.stack.vault.set_secret("servicenow-signing", servicenow_secret)
    bridge.configure(SERVICENOW_SIGNING_SECRET_NAME="servicenow-signing")
    body = body_for("servicenow")
    status, _ = bridge.http("servicenow", body, headers=standard_headers(body, provision_secret))
    assert status == 401


def test_a_delivery_that_failed_on_the_bridge_side_may_be_sent_again(bridge):
    """A 5xx releases the webhook-id, so the sender's retry (same id) is processed."""
    secret = standard_signed(bridge, "servicenow")
    body = body_for("servicenow")
    headers = standard_headers(body, secret)
    bridge.configure(POINT_TEMPLATE_IDS="seven")  # broken after the signature was checked
    status, answer = bridge.http("servicenow", body, headers=headers)
    assert status == 503 and answer["errors"][0]["field"] == "POINT_TEMPLATE_IDS"
    bridge.configure(POINT_TEMPLATE_IDS="7,8,9,10")
    status, answer = bridge.http("servicenow", body, headers=headers)
    assert status == 201, answer


# == the REQUIRE settings ==========================================================

ROUTE_SETTINGS = {
    "jira": ("JIRA_REQUIRE_SIGNATURE", "JIRA_WEBHOOK_SECRET_NAME"),
    "servicenow": ("SERVICENOW_REQUIRE_SIGNATURE", "SERVICENOW_SIGNING_SECRET_NAME"),
    "provision": ("PROVISION_REQUIRE_SIGNATURE", "PROVISION_SIGNING_SECRET_NAME"),
}


def signed_request(route: str, secret: str, ticket: str, *, good: bool = True) -> tuple[bytes, dict]:
    body = body_for(route, ticket)
    key = secret if good else ("whsec_" + base64.b64encode(b"not the secret").decode() if route != "jira" else "no")
    if route == "jira":
        return body, {"X-Hub-Signature": auth.sign_hub(body, key)}
    return body, standard_headers(body, key)


@pytest.mark.parametrize("route", ROUTE_SETTINGS)
def test_signature_is_mandatory_by_default_once_a_secret_is_named(bridge, route):
    require, name = ROUTE_SETTINGS[route]
    bridge.configure(**JIRA_FIELDS)
    status, answer = bridge.http(route, body_for(route, "NOSIG-1"))  # no secret named: the check is off
    assert status == 201, answer
    secret = whsec()
    bridge.stack.vault.set_secret("route-secret", secret)
    bridge.configure(**{name: "route-secret"})
    status, answer = bridge.http(route, body_for(route, "NOSIG-2"))
    assert status == 401 and answer["errors"][0]["field"] == "signature"
    body, headers = signed_request(route, secret, "SIG-1")
    assert bridge.http(route, body, headers=headers)[0] == 201
    bridge.configure(**{require: "true"})
    assert bridge.http(route, body_for(route, "NOSIG-3"))[0] == 401
    assert len(bridge.stack.point.provision_calls()) == 2


@pytest.mark.parametrize("route", ROUTE_SETTINGS)
def test_optional_signature_is_still_checked_when_sent(bridge, route):
    require, name = ROUTE_SETTINGS[route]
    secret = whsec()
    bridge.stack.vault.set_secret("route-secret", secret)
    bridge.configure(**{name: "route-secret", require: "false"}, **JIRA_FIELDS)
    status, answer = bridge.http(route, body_for(route, "OPT-1"))
    assert status == 201, answer
    body, headers = signed_request(route, secret, "OPT-2", good=False)
    status, answer = bridge.http(route, body, headers=headers)
    assert status == 401 and answer["errors"][0]["field"] == "signature"
    body, headers = signed_request(route, secret, "OPT-3")
    assert bridge.http(route, body, headers=headers)[0] == 201


@pytest.mark.parametrize("route", ROUTE_SETTINGS)
def test_mandatory_without_a_secret_is_503_naming_the_setting(bridge, route, caplog):
    require, name = ROUTE_SETTINGS[route]
    bridge.configure(**{require: "true"}, **JIRA_FIELDS)
    body, headers = signed_request(route, whsec(), "CFG-1")
    status, answer = bridge.http(route, body, headers=headers)
    assert status == 503
    [(field, message)] = errors_of(answer)
    assert field == name and require in message
    assert any(r.levelname == "ERROR" and name in r.getMessage() for r in caplog.records)
    bridge.configure(**{require: "maybe"})
    status, answer = bridge.http(route, body, headers=headers)
    assert status == 503 and errors_of(answer)[0][0] == require
    assert bridge.stack.point.provision_calls() == []


@pytest.mark.parametrize("route", ROUTE_SETTINGS)
def test_a_signing_secret_missing_from_the_vault_is_503_not_an_open_door(bridge, route):
    _, name = ROUTE_SETTINGS[route]
    bridge.configure(**{name: "no-such-secret"}, **JIRA_FIELDS)
    status, answer = bridge.http(route, body_for(route, "KV-1"))
    assert status == 503
    [(field, message)] = errors_of(answer)
    # What failed, not where: the answer names no secret (the log does).
    assert field == "keyVault" and "not found in the vault" in message and "no-such-secret" not in message
    assert bridge.stack.point.provision_calls() == []


# == Syskit Point events: Signature ===================================================


def test_point_events_need_the_webhook_key_and_accept_the_second_during_rotation(bridge):
    event = fixture("point_completed.json")
    body = json.dumps(event).encode()
    next_key = secrets.token_urlsafe(32)
    headers = {"Signature": auth.sign_point_event(body, next_key), "Algorithm": "HMACSHA256"}
    status, answer = bridge.http("point_events", body, headers=headers)
    assert status == 401 and answer["errors"][0]["field"] == "Signature"
    bridge.stack.vault.set_secret("point-webhook-key-next", next_key)
    bridge.configure(POINT_WEBHOOK_KEY_SECRET_NAME="point-webhook-key,point-webhook-key-next")
    status, answer = bridge.http("point_events", body, headers=headers)
    assert status == 202 and answer["status"] == "unmatched", answer
    changed = body.replace(b"Apollo", b"Apollp")
    status, _ = bridge.http("point_events", changed, headers=headers)
    assert status == 401


# == deskbridge.auth on its own ========================================================

BODY = b'{"issue": {"key": "HR-1"}}'


def hub(body: bytes, secret: str) -> dict:
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_hub_signature_is_the_hex_hmac_sha256_of_the_raw_body():
    auth.HubSignature(["s3cret"]).verify(BODY, hub(BODY, "s3cret"))
    assert auth.sign_hub(BODY, "s3cret") == hub(BODY, "s3cret")["X-Hub-Signature"]
    auth.HubSignature(["other", "s3cret"]).verify(BODY, {"x-hub-signature": auth.sign_hub(BODY, "s3cret")})


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "missing"),
        ({"X-Hub-Signature": "  "}, "missing"),
        ({"X-Hub-Signature": "md5=abc"}, "sha256=<hex>"),
        ({"X-Hub-Signature": "sha256"}, "sha256=<hex>"),
        ({"X-Hub-Signature": "sha256=" + "a" * 64}, "does not match"),
        ({"X-Hub-Signature": "sha256=\u00e9\u00e9"}, "does not match"),
        (hub(BODY + b" ", "s3cret"), "does not match"),
        (hub(BODY, "s3cret "), "does not match"),
    ],
)
def test_hub_signature_refusals(headers, problem):
    with pytest.raises(SignatureError, match=problem.replace("<", ".").replace(">", ".")):
        auth.HubSignature(["s3cret"]).verify(BODY, headers)


def test_no_configured_secret_accepts_nothing():
    with pytest.raises(SignatureError):
        auth.HubSignature([]).verify(BODY, hub(BODY, "s3cret"))
    with pytest.raises(SignatureError):
        auth.StandardWebhook([]).verify(BODY, standard_headers(BODY, whsec()))
    with pytest.raises(SignatureError):
        auth.PointSignature([]).verify(BODY, {"Signature": auth.sign_point_event(BODY, "k")})


def test_every_secret_is_compared_in_constant_time(monkeypatch):
    """compare_digest for each configured secret, even after a match: no early exit tells which one matched."""
    compared = []
    original = hmac.compare_digest

    def counting(a, b):
        compared.append((type(a), type(b)))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    auth.HubSignature(["first", "second"]).verify(BODY, hub(BODY, "first"))
    assert len(compared) == 2
    compared.clear()
    signed = {"Signature": auth.sign_point_event(BODY, "first"), "Algorithm": "HMACSHA256"}
    auth.PointSignature(["first", "second"]).verify(BODY, signed)
    assert len(compared) == 2


def independent_standard_signature(body: bytes, secret: str, webhook_id: str, timestamp: int) -> str:
    """The Standard Webhooks scheme written out: base64 HMAC-SHA256 of id.timestamp.body, key = the decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_standard_webhook_signing_follows_the_specification():
    secret, now = whsec(), int(time.time())
    headers = auth.sign_standard_webhook(BODY, secret, "msg_abc", now)
    assert headers == {"webhook-id": "msg_abc", "webhook-timestamp": str(now),
                       "webhook-signature": independent_standard_signature(BODY, secret, "msg_abc", now)}
    assert auth.StandardWebhook([secret]).verify(BODY, headers) == "msg_abc"


def test_standard_webhook_accepts_any_listed_signature_and_any_listed_secret():
    secret, now = whsec(), int(time.time())
    good = independent_standard_signature(BODY, secret, "msg_1", now)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now),
               "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} v0,legacy {good}"}
    assert auth.StandardWebhook(["whsec_bm90IHVzZWQ=", secret]).verify(BODY, headers) == "msg_1"


@pytest.mark.parametrize(
    ("change", "now_offset", "problem"),
    [
        ({}, 301, "more than 5 minutes old"),
        ({}, -301, "more than 5 minutes in the future"),
        ({"webhook-timestamp": "-5"}, 0, "whole seconds"),
        ({"webhook-timestamp": "nan"}, 0, "whole seconds"),
        ({"webhook-timestamp": "\u0661\u0667"}, 0, "whole seconds"),
        ({"webhook-timestamp": "9" * 40}, 0, "whole seconds"),
        ({"webhook-id": "id\nwith a newline"}, 0, "printable"),
        ({"webhook-signature": "v1"}, 0, "'v1,<base64"),
        ({"webhook-signature": "v1,not base64!"}, 0, "'v1,<base64"),
        ({"webhook-signature": "v1,a,b"}, 0, "'v1,<base64"),
        ({"webhook-signature": " ".join(["v1,AAAA"] * 9)}, 0, "more than 8"),
        ({"webhook-signature": "v1,AAAA"}, 0, "does not match"),
    ],
)
def test_standard_webhook_refusals(change, now_offset, problem):
    secret, now = whsec(), int(time.time())
    headers = auth.sign_standard_webhook(BODY, secret, "msg_1", now) | change
    with pytest.raises(SignatureError) as refused:
        auth.StandardWebhook([secret], now=now + now_offset).verify(BODY, headers)
    assert problem in str(refused.value)


def test_standard_webhook_body_that_is_not_utf8_and_secrets_that_are_not_whsec():
    secret, now = whsec(), int(time.time())
    with pytest.raises(SignatureError, match="not UTF-8"):
        auth.StandardWebhook([secret]).verify(b"\xff", auth.sign_standard_webhook(b"x", secret, "m", now))
    headers = auth.sign_standard_webhook(BODY, secret, "m", now)
    with pytest.raises(SignatureError, match="not whsec_<base64>"):
        auth.StandardWebhook(["a"]).verify(BODY, headers)  # one base64 character decodes to nothing


def test_point_signature_is_base64_hmac_of_the_body_keyed_with_the_key_text():
    key = "webhook key from Point options"
    expected = base64.b64encode(hmac.new(key.encode(), BODY, hashlib.sha256).digest()).decode()
    assert auth.sign_point_event(BODY, key) == expected
    auth.PointSignature(["old", key]).verify(BODY, {"signature": expected, "algorithm": "HMACSHA256"})
    for headers, problem in (
        ({}, "missing"),
        ({"Signature": expected, "Algorithm": "MD5"}, "not supported"),
        ({"Signature": expected}, "Algorithm header is missing"),
        ({"Signature": expected[:-2] + "AA", "Algorithm": "HMACSHA256"}, "does not match"),
        ({"Signature": "\u00e9" + expected, "Algorithm": "HMACSHA256"}, "does not match"),
    ):
        with pytest.raises(SignatureError, match=problem):
            auth.PointSignature([key]).verify(BODY, headers)
