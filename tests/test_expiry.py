"""Warning before a Key Vault secret runs out: log lines once a day, never on the hot path, and doctor."""

import json
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import fixture

from deskbridge import cli
from deskbridge.auth import sign_hub
from deskbridge.expiry import EVENT, ExpiryState, assess, configured_secrets
from deskbridge.settings import Settings

DAY = 86400
JIRA_FIELDS = {
    "JIRA_FIELD_DISPLAY_NAME": "customfield_10054",
    "JIRA_FIELD_DESCRIPTION": "description",
    "JIRA_FIELD_OWNERS": "customfield_10060",
    "JIRA_FIELD_MEMBERS": "customfield_10061",
}
HIDDEN_OWNER = "557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10"


@pytest.fixture
def vault(bridge, monkeypatch):
    """The stack's vault, with its secrets put back as they were after the test."""
    monkeypatch.setattr(bridge.stack.vault, "secrets", dict(bridge.stack.vault.secrets))
    return bridge.stack.vault


def expiry_lines(caplog) -> list[tuple[str, str, int]]:
    return [
        (r.levelname, r.secret_name, r.days_left)
        for r in caplog.records
        if getattr(r, "bridge_event", "") == EVENT
    ]


def signed_jira_approval(bridge, n: int, webhook_secret: str) -> tuple[int, dict]:
    payload = fixture("jira_webhook_approved.json")
    payload["issue"]["key"] = f"HR-{n}"
    payload["issue"]["fields"]["customfield_10054"] = f"Project Apollo {n}"
    body = json.dumps(payload).encode("utf-8")
    return bridge.http("jira", body, headers={"X-Hub-Signature": sign_hub(body, webhook_secret)})


def test_assessment_against_the_warning_window():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert assess("a", now + timedelta(days=10), now, 30).state == ExpiryState.EXPIRING
    assert assess("a", now + timedelta(days=10), now, 30).days_left == 10
    assert assess("a", now + timedelta(days=30), now, 30).state == ExpiryState.EXPIRING
    assert assess("a", now + timedelta(days=31), now, 30).state == ExpiryState.OK
    assert assess("a", now + timedelta(days=60), now, 30).state == ExpiryState.OK
    assert assess("a", now + timedelta(hours=2), now, 30).state == ExpiryState.EXPIRING
    assert assess("a", now - timedelta(hours=2), now, 30).state == ExpiryState.EXPIRED
    expired = assess("a", now - timedelta(days=3), now, 30)
    assert (expired.state, expired.days_left, expired.date) == (ExpiryState.EXPIRED, -3, "2026-02-26")
    assert assess("a", None, now, 30).state == ExpiryState.NO_EXPIRY
    naive = assess("a", datetime(2026, 3, 5), now, 30)  # no zone: taken as UTC
    assert (naive.state, naive.days_left) == (ExpiryState.EXPIRING, 4)


def test_configured_secrets_follow_the_settings():
    secret_mode = Settings({"JIRA_WEBHOOK_SECRET_NAME": "jira-hook,jira-hook-next", "JIRA_API_TOKEN_SECRET_NAME": "jt"})
    assert configured_secrets(secret_mode) == [
        ("POINT_CLIENT_SECRET_NAME", "point-client-secret"),
        ("JIRA_API_TOKEN_SECRET_NAME", "jt"),
        ("JIRA_WEBHOOK_SECRET_NAME", "jira-hook"),
        ("JIRA_WEBHOOK_SECRET_NAME", "jira-hook-next"),
    ]
    federated = Settings({"POINT_AUTH_MODE": "federated", "SERVICENOW_PASSWORD_SECRET_NAME": "snp"})
    assert configured_secrets(federated) == [("SERVICENOW_PASSWORD_SECRET_NAME", "snp")]


def test_expiring_and_expired_secrets_are_logged_once_across_re_reads(bridge, vault, caplog):
    stack = bridge.stack
    now = time.time()
    webhook_secret = "jw-" + secrets.token_urlsafe(24)
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=now + 10 * DAY)
    vault.set_secret("jira-api-token", stack.jira_token, expires_on=now + 60 * DAY)
    vault.set_secret("jira-webhook-secret", webhook_secret, expires_on=now - 2 * DAY)
    vault.set_secret("servicenow-password", stack.servicenow_password)  # no expiry date
    # A zero TTL: the webhook secret is read from Key Vault again for every approval.
    bridge.configure(JIRA_WEBHOOK_SECRET_NAME="jira-webhook-secret", BRIDGE_SECRET_TTL_SECONDS="0", **JIRA_FIELDS)
    stack.jira.add_user(HIDDEN_OWNER, "Hidden Harry", "harry@contoso.com")  # the Jira API token gets used
    caplog.set_level(logging.INFO, logger="deskbridge")

    for n in range(6):
        status, body = signed_jira_approval(bridge, n, webhook_secret)
        assert status == 201, body

    assert len(vault.reads("jira-webhook-secret")) == 6
    assert len(vault.reads("point-client-secret")) == 1  # the token is cached: no re-read, no extra call
    assert len(vault.reads("jira-api-token")) == 1
    assert sorted(expiry_lines(caplog)) == [
        ("ERROR", "jira-webhook-secret", -2),
        ("WARNING", "point-client-secret", 10),
    ]
    [warning] = [r for r in caplog.records if getattr(r, "secret_name", "") == "point-client-secret"]
    expires = datetime.fromtimestamp(int(now + 10 * DAY), UTC)
    assert warning.expires_on == expires.isoformat()
    assert warning.getMessage().startswith(f"Key Vault secret point-client-secret expires on {expires.date()}")
    for value in (stack.client_secret, stack.jira_token, webhook_secret):
        assert value not in caplog.text

    # The next day, a re-read logs again; a secret that is not re-read costs nothing and logs nothing.
    watch = bridge.runtime.secrets._on_read
    watch.now = lambda: datetime.now(UTC) + timedelta(days=1, minutes=1)
    caplog.clear()
    for n in range(6, 9):
        assert signed_jira_approval(bridge, n, webhook_secret)[0] == 201
    assert len(vault.reads("jira-webhook-secret")) == 9
    assert expiry_lines(caplog) == [("ERROR", "jira-webhook-secret", -3)]


def test_secret_renewed_before_expiry_stops_the_warning(bridge, vault, caplog):
    stack = bridge.stack
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=time.time() + 5 * DAY)
    bridge.configure(BRIDGE_SECRET_EXPIRY_WARNING_DAYS="7")
    cache = bridge.runtime.secrets
    cache.get("point-client-secret")
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=time.time() + 400 * DAY)
    cache.get("point-client-secret", refresh=True)
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=time.time() + 8 * DAY)
    cache.get("point-client-secret", refresh=True)
    assert [(level, name) for level, name, _ in expiry_lines(caplog)] == [("WARNING", "point-client-secret")]
    assert len(vault.reads("point-client-secret")) == 3


@pytest.fixture
def run_doctor(bridge, tmp_path, monkeypatch, capsys):
    """``python -m deskbridge doctor`` in this process, on the bridge fixture's runtime."""
    monkeypatch.chdir(tmp_path)  # no local.settings.json from the project folder

    def run(*argv):
        code = cli.main(["doctor", *argv])
        return code, capsys.readouterr().out

    return run


def expiry_output(out: str) -> tuple[str, str]:
    lines = out.splitlines()
    [line] = [text for text in lines if " secret expiry " in text]
    following = lines[lines.index(line) + 1]
    return line, following if following.strip().startswith("->") else ""


def test_doctor_shows_each_secret_and_fails_on_an_expired_one(bridge, vault, run_doctor):
    stack = bridge.stack
    now = time.time()
    in_10 = datetime.fromtimestamp(int(now + 10 * DAY), UTC).date()
    in_60 = datetime.fromtimestamp(int(now + 60 * DAY), UTC).date()
    ago_3 = datetime.fromtimestamp(int(now - 3 * DAY), UTC).date()
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=now + 10 * DAY)
    vault.set_secret("jira-api-token", stack.jira_token, expires_on=now + 60 * DAY)
    vault.set_secret("servicenow-password", stack.servicenow_password, expires_on=now - 3 * DAY)
    vault.set_secret("point-webhook-key", stack.point.signature_key)  # no expiry date

    code, out = run_doctor()
    assert code == 1
    line, hint = expiry_output(out)
    assert line.startswith("FAIL  secret expiry")
    assert line.split("  ", 2)[-1].strip() == (
        f"servicenow-password EXPIRED on {ago_3}; point-client-secret expires on {in_10} (10 days left); "
        f"point-webhook-key has no expiry date; jira-api-token expires on {in_60}"
    )
    assert "put it in Key Vault with its new expiry date" in hint
    assert "app POINT_CLIENT_ID > Certificates & secrets" in hint and "POINT_AUTH_MODE=federated" in hint
    assert "set each secret's expiry date in Key Vault" in hint and "Entra ID client secret's Expires" not in hint
    for value in stack.secret_values():
        assert value not in out

    code, out = run_doctor("--json")
    [report] = [c for c in json.loads(out)["checks"] if c["check"] == "secret expiry"]
    assert code == 1 and report["state"] == "fail"


def test_doctor_warns_on_expiring_and_undated_secrets_without_failing(bridge, vault, run_doctor):
    stack = bridge.stack
    now = time.time()
    vault.set_secret("point-client-secret", stack.client_secret, expires_on=now + 10 * DAY)
    for name, value in (("point-webhook-key", stack.point.signature_key), ("jira-api-token", stack.jira_token),
                        ("servicenow-password", stack.servicenow_password)):
        vault.set_secret(name, value, expires_on=now + 60 * DAY)
    code, out = run_doctor()
    line, hint = expiry_output(out)
    assert code == 0 and line.startswith("WARN  secret expiry"), out
    assert "point-client-secret expires on" in line and "(10 days left)" in line
    assert "has no expiry date" not in line and "Expires date" not in hint

    vault.set_secret("point-client-secret", stack.client_secret)  # no expiry date: doctor says what to set
    bridge.configure()
    code, out = run_doctor()
    line, hint = expiry_output(out)
    assert code == 0 and line.startswith("WARN  secret expiry")
    assert "point-client-secret has no expiry date" in line
    assert "the Entra ID client secret's Expires date" in hint and "az keyvault secret set-attributes" in hint


def test_doctor_is_quiet_when_every_secret_is_far_from_expiry(bridge, vault, run_doctor):
    stack = bridge.stack
    far = time.time() + 200 * DAY
    for name, value in (("point-client-secret", stack.client_secret), ("point-webhook-key", stack.point.signature_key),
                        ("jira-api-token", stack.jira_token), ("servicenow-password", stack.servicenow_password)):
        vault.set_secret(name, value, expires_on=far)
    code, out = run_doctor()
    line, hint = expiry_output(out)
    assert code == 0 and line.startswith("ok    secret expiry"), out
    assert line.endswith("(all more than 30 days away)") and hint == ""


def test_daily_timer_warns_again_about_a_secret_read_only_once(bridge, vault, caplog):
    from conftest import functions

    vault.set_secret("point-client-secret", bridge.stack.client_secret, expires_on=time.time() + 10 * DAY)
    caplog.set_level(logging.INFO, logger="deskbridge")
    assert bridge.http("provision", fixture("syskit_jira_custom_body.json"))[0] == 201
    timer = functions()["secret_expiry_check"].get_user_function()
    timer(None)  # the same day: already said
    assert expiry_lines(caplog) == [("WARNING", "point-client-secret", 10)]
    bridge.runtime.secrets._on_read.now = lambda: datetime.now(UTC) + timedelta(days=1, minutes=1)
    timer(None)  # the next morning
    assert expiry_lines(caplog) == [("WARNING", "point-client-secret", 10), ("WARNING", "point-client-secret", 9)]
    assert len(vault.reads("point-client-secret")) == 1  # the check reads nothing from the vault
