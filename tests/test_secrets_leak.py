"""Secrets never leave the bridge: the main flows run with known secret values, and none of them appears in
a log record (every logger, azure's and msal's included, at DEBUG), an answer, a ledger or deliveries
entity, a queue message, or what the operator commands print.

The secrets: the stack's (Entra client secret, the vault reader's secret, the Jira API token, the
ServiceNow password, the Syskit Point webhook key), the signing secrets set here, a function key, the
managed identity header, every bearer token the Entra stand-in issued during the test, and the Basic
credentials the desks receive.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import uuid
from typing import Any

import pytest
from conftest import fixture

from deskbridge import auth, cli
from devtools.stack import SAMPLE_JIRA_FIELDS

JIRA_FIELDS = SAMPLE_JIRA_FIELDS
QUEUES = ("BRIDGE_RETRY_QUEUE", "BRIDGE_RETRY_POISON_QUEUE", "BRIDGE_DESK_QUEUE", "BRIDGE_DESK_POISON_QUEUE")
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


class Exposure:
    """What the bridge let out during one test, and the secrets that must not be in it."""

    def __init__(self, bridge: Any, caplog: pytest.LogCaptureFixture) -> None:
        self.bridge = bridge
        self.caplog = caplog
        self.places: list[tuple[str, str]] = []
        self.extra_secrets: dict[str, str] = {}

    # -- what went out -----------------------------------------------------------
    def http(self, name: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, answer = self.bridge.http(name, body, **kwargs)
        self.places.append((f"answer of {name}", json.dumps(answer, ensure_ascii=False)))
        return status, answer

    def peek_queues(self) -> None:
        for setting in QUEUES:
            for message in self.bridge.messages(setting):
                self.places.append((f"queue {setting}", message))

    def cli(self, capsys: pytest.CaptureFixture, *argv: str) -> int:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        self.places.append((f"cli {' '.join(argv)}", out + err))
        return code

    def _tables(self) -> list[tuple[str, str]]:
        from azure.data.tables import TableClient

        found = []
        for setting in ("BRIDGE_LEDGER_TABLE", "BRIDGE_DELIVERIES_TABLE"):
            table = TableClient.from_connection_string(
                self.bridge.settings["AzureWebJobsStorage"], table_name=self.bridge.settings[setting]
            )
            try:
                entities = list(table.list_entities())
            except Exception:  # never created in this test
                entities = []
            found += [(f"table {setting}", json.dumps(dict(e), default=str, ensure_ascii=False)) for e in entities]
        return found

    def _logs(self) -> list[tuple[str, str]]:
        texts = []
        for record in self.caplog.records:
            texts.append((f"log {record.name}", FORMAT.format(record) + " " + repr(vars(record))))
        return texts

    # -- the secrets ---------------------------------------------------------------
    def secrets(self) -> dict[str, str]:
        stack = self.bridge.stack
        known = {f"stack secret {i}": value for i, value in enumerate(stack.secret_values())}
        known["managed identity header"] = stack.entra.identity_header
        known.update(self.extra_secrets)
        for n, token in enumerate(list(stack.entra._tokens)):  # every bearer token issued so far
            known[f"bearer token {n}"] = token
        basic = {
            "jira basic": f"{stack.jira.email}:{stack.jira_token}",
            "servicenow basic": f"{stack.servicenow.username}:{stack.servicenow_password}",
        }
        known.update({name: base64.b64encode(value.encode()).decode() for name, value in basic.items()})
        for name, value in list(known.items()):
            if value.startswith("whsec_"):
                known[name + " (key part)"] = value.removeprefix("whsec_")
        return known

    def assert_nothing_leaked(self) -> None:
        places = self.places + self._logs() + self._tables()
        assert len(self.caplog.records) > 0 and places
        known = self.secrets()
        assert all(len(value) >= 16 for value in known.values())  # a short value would match by chance
        # Only names and places in the failure message: the values themselves must not reach test output.
        leaked = sorted({(name, where) for name, value in known.items() for where, text in places if value in text})
        assert not leaked, leaked


@pytest.fixture
def exposure(bridge, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records reach caplog
    for name in ("azure", "msal", "urllib3", "deskbridge"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    watched = Exposure(bridge, caplog)
    yield watched
    for name in ("azure", "msal", "urllib3", "deskbridge"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_everywhere(exposure: Exposure) -> dict[str, str]:
    """Signing secrets for every route, in the vault, named by the settings."""
    stack = exposure.bridge.stack
    values = {"jira": "jira-hook-" + secrets.token_urlsafe(24), "servicenow": whsec(), "provision": whsec()}
    for route, value in values.items():
        stack.vault.set_secret(f"{route}-signing-secret", value)
        exposure.extra_secrets[f"{route} signing secret"] = value
    exposure.bridge.configure(
        JIRA_WEBHOOK_SECRET_NAME="jira-signing-secret",
        SERVICENOW_SIGNING_SECRET_NAME="servicenow-signing-secret",
        PROVISION_SIGNING_SECRET_NAME="provision-signing-secret",
        **JIRA_FIELDS,
    )
    return values


def standard(body: bytes, secret: str) -> dict[str, str]:
    return auth.sign_standard_webhook(body, secret, f"msg_{uuid.uuid4().hex}", int(time.time()))


def test_approvals_events_and_write_back_leak_nothing(exposure):
    bridge, stack = exposure.bridge, exposure.bridge.stack
    signing = signed_everywhere(exposure)
    stack.jira.add_user("557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10", "Hidden Harry", "harry@contoso.com")

    provision = fixture("syskit_servicenow_body.json") | {
        "ticket": {"source": "hr", "id": "HR-LEAK-1", "callbackUrl": stack.callbacks.url + "/outcome"}
    }
    jira = json.dumps(fixture("jira_webhook_approved.json")).encode()
    servicenow = json.dumps(fixture("servicenow_ritm.json") | {"variables": {
        "site_name": "Leak check", "workspace_type": "sites", "is_private": "false", "template_id": "8"}}).encode()
    raw_provision = json.dumps(provision).encode()
    answers = [
        exposure.http("provision", raw_provision, headers=standard(raw_provision, signing["provision"])),
        exposure.http("jira", jira, headers={"X-Hub-Signature": auth.sign_hub(jira, signing["jira"])}),
        exposure.http("servicenow", servicenow, headers=standard(servicenow, signing["servicenow"])),
    ]
    assert [status for status, _ in answers] == [201, 201, 201], answers
    # Refused callers: no signature, a wrong one, a replay.
    assert exposure.http("jira", jira, headers={"X-Hub-Signature": "sha256=" + "0" * 64})[0] == 401
    assert exposure.http("provision", raw_provision)[0] == 401
    replay = standard(servicenow, signing["servicenow"])
    exposure.http("servicenow", servicenow, headers=replay)
    assert exposure.http("servicenow", servicenow, headers=replay)[0] == 409

    # Syskit Point reports back; the desks are written to.
    for request in list(stack.point.provisioned):
        for kind in ("ProvisioningStarted", "ProvisioningCompleted"):
            body, headers = stack.point.signed(stack.point.event(kind, request))
            status, answer = exposure.http("point_events", body, headers=headers)
            assert status == 200, answer
    bad_body, bad_headers = stack.point.signed(stack.point.event("ProvisioningCompleted", stack.point.provisioned[0]))
    assert exposure.http("point_events", bad_body + b" ", headers=bad_headers)[0] == 401
    exposure.peek_queues()
    assert bridge.drain("BRIDGE_DESK_QUEUE", "desk_update") >= 3
    assert stack.jira.comments and stack.servicenow.patches and stack.callbacks.received
    for source, ticket in (("hr", "HR-LEAK-1"), ("jira", "HR-42"), ("servicenow", "RITM0010452")):
        status, _ = exposure.http("request_status", method="GET", route_params={"source": source, "ticket": ticket})
        assert status == 200
    exposure.peek_queues()
    exposure.assert_nothing_leaked()


def test_a_rotated_client_secret_is_re_read_without_showing_it(exposure):
    """Syskit Point answers 401 (token revoked), Entra refuses the old secret, the new one is read from Key Vault."""
    bridge, stack = exposure.bridge, exposure.bridge.stack
    assert exposure.http("provision", fixture("syskit_servicenow_body.json"))[0] == 201
    rotated = "cs2-" + secrets.token_urlsafe(24)
    exposure.extra_secrets["rotated client secret"] = rotated
    stack.entra.apps[bridge.settings["POINT_CLIENT_ID"]].secret = rotated
    stack.vault.set_secret("point-client-secret", rotated)
    stack.entra.revoke_all(bridge.settings["POINT_API_APP_ID"])
    status, answer = exposure.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 201, answer
    assert [c.headers.get("Authorization") is not None for c in stack.point.provision_calls()].count(True) >= 3
    assert len(stack.vault.reads("point-client-secret")) >= 2
    exposure.assert_nothing_leaked()


def test_an_expired_client_secret_and_a_key_vault_outage_leak_nothing(exposure):
    bridge, stack = exposure.bridge, exposure.bridge.stack
    stack.entra.apps[bridge.settings["POINT_CLIENT_ID"]].secret_expired = True
    status, answer = exposure.http("provision", fixture("syskit_servicenow_body.json"))
    assert status in (202, 503), answer
    assert any("expired" in e["message"] for e in answer["errors"]), answer
    # Key Vault down for a fresh worker: the secret cannot be read at all.
    stack.entra.apps[bridge.settings["POINT_CLIENT_ID"]].secret_expired = False
    bridge.configure(BRIDGE_SECRET_TTL_SECONDS="1")
    stack.vault.fail_next(50, 500)
    status, answer = exposure.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status in (202, 503), answer
    signing = whsec()
    exposure.extra_secrets["provision signing secret"] = signing
    bridge.configure(PROVISION_SIGNING_SECRET_NAME="provision-signing-secret")
    stack.vault.set_secret("provision-signing-secret", signing)
    raw = json.dumps(fixture("syskit_servicenow_body.json") | {"ticket": {"source": "hr", "id": "KV-2"}}).encode()
    status, answer = exposure.http("provision", raw, headers=standard(raw, signing))
    assert status == 503 and answer["errors"][0]["field"] == "keyVault", answer
    stack.vault.clear_faults()
    time.sleep(1.2)  # scheduled retries become visible
    exposure.peek_queues()
    exposure.assert_nothing_leaked()


def test_operator_commands_print_no_secret(exposure, capsys, monkeypatch):
    bridge, stack = exposure.bridge, exposure.bridge.stack
    for key, value in bridge.settings.items():
        monkeypatch.setenv(key, value)
    function_key = "fk-" + secrets.token_urlsafe(30)
    exposure.extra_secrets["function key"] = function_key
    endpoint = f"https://bridge.example/api/point/events?code={function_key}"
    stack.point.fail_next(20, 503, method="POST", path_prefix="/v1.0/provision/")
    assert exposure.http("provision", fixture("syskit_servicenow_body.json"))[0] == 202  # queued: listed below
    stack.point.clear_faults()
    assert exposure.cli(capsys, "list", "--all") == 0
    assert exposure.cli(capsys, "list", "--json") == 0
    assert exposure.cli(capsys, "templates") == 0
    assert exposure.cli(capsys, "templates", "--json") == 0
    assert exposure.cli(capsys, "webhooks", "register", endpoint) == 0
    assert exposure.cli(capsys, "webhooks", "list") == 0
    assert exposure.cli(capsys, "webhooks", "list", "--json") == 0
    assert exposure.cli(capsys, "webhooks", "delete", endpoint, "--json") == 0
    assert exposure.cli(capsys, "webhooks", "delete", endpoint) == 1  # already gone: an error, still no key
    assert any("code=***" in text or "code=%2A%2A%2A" in text for _, text in exposure.places)
    exposure.assert_nothing_leaked()
