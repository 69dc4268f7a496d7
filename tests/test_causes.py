"""A newcomer's doctor and commands name the real cause of a connection failure, and fast.

The bridge runs as ``python -m deskbridge`` does: in a folder with a
``local.settings.json`` (written by the local stack's own writer), settings
loaded from it into the environment, and a runtime built from that. The
failures are real: a certificate from a CA this process does not trust, a
port where nothing listens, a name that does not resolve, a listener that
never answers. ``time.monotonic`` only bounds the wait a person sees.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
import requests

from deskbridge import cli
from deskbridge import runtime as runtimes
from deskbridge.causes import diagnose
from devtools.local_settings import StackSettings
from devtools.stack import local_settings_values

QUICK = 3.0  # seconds a person may wait for doctor to name the cause


@pytest.fixture
def newcomer(stack, tmp_path, monkeypatch, capsys):
    """A project folder and a fresh process state; run(*argv) -> (code, out, err, seconds)."""
    saved = dict(os.environ)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtimes, "_current", None)  # built from the environment, as in a new process

    def run(*argv):
        started = time.monotonic()
        code = cli.main(list(argv))
        seconds = time.monotonic() - started
        out, err = capsys.readouterr()
        runtimes._current = None  # the next command is a new process too
        return code, out, err, seconds

    yield run
    os.environ.clear()
    os.environ.update(saved)
    runtimes.reset({})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_stack_settings(stack, folder: Path, **changes: str) -> Path:
    """local.settings.json as python -m devtools.stack writes it (its marker included), with changes."""
    values = local_settings_values(stack) | changes
    held = StackSettings(folder / "local.settings.json")
    held.take(values)
    return held.path


def lines_of(out: str, check: str) -> tuple[str, str]:
    lines = out.splitlines()
    [line] = [text for text in lines if text.split()[1:2] == [check.split()[0]] and check in text]
    following = lines[lines.index(line) + 1]
    return line, following.strip() if following.strip().startswith("->") else ""


def test_an_untrusted_certificate_is_named_with_both_bundles_within_seconds(stack, newcomer, tmp_path, monkeypatch):
    import trustme

    other = tmp_path / "machine-bundle.pem"
    trustme.CA().cert_pem.write_to_path(str(other))  # a bundle that does not hold the stand-ins' CA
    write_stack_settings(stack, tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))  # the shell's own, which wins over the file

    code, out, _, seconds = newcomer("doctor")
    assert code == 1 and seconds < QUICK, (seconds, out)
    line, hint = lines_of(out, "key vault")
    assert line.startswith("FAIL") and "certificate" in line and "not trusted" in line
    assert "unreachable (ServiceRequestError)" not in out
    assert f"REQUESTS_CA_BUNDLE={other}" in hint  # the bundle in use...
    assert f"REQUESTS_CA_BUNDLE={stack.tls.ca_bundle}" in hint and "local stack" in hint  # ...and the stack's
    # The other secrets are not read again (each would fail the same way).
    assert "not read: Key Vault unreachable" in lines_of(out, "other secrets")[0]
    assert lines_of(out, "storage")[0].startswith("ok")  # Azurite is plain http: it works


def test_a_stopped_stack_is_nothing_listening_within_seconds(stack, newcomer, tmp_path):
    port = closed_port()
    storage = ";".join(f"{part.split('=')[0]}=http://127.0.0.1:{port}/devstoreaccount1" if "Endpoint=" in part
                       else part for part in stack.azurite.connection_string.split(";"))
    # What a stack killed with SIGKILL leaves: its own file, naming ports nothing listens on now.
    write_stack_settings(stack, tmp_path, KEY_VAULT_URL=f"https://127.0.0.1:{port}", AzureWebJobsStorage=storage,
                         POINT_URL=f"https://127.0.0.1:{port}")

    code, out, _, seconds = newcomer("doctor")
    assert code == 1 and seconds < QUICK, (seconds, out)
    vault, vault_hint = lines_of(out, "key vault")
    assert f"nothing listens on 127.0.0.1:{port}" in vault
    assert "local stack that is not running any more" in vault_hint and "python -m devtools.stack" in vault_hint
    storage_line, storage_hint = lines_of(out, "storage")
    assert f"storage unreachable: nothing listens on 127.0.0.1:{port}" in storage_line
    assert "python -m devtools.stack" in storage_hint
    assert "is Azurite running (scripts/run-local starts it)?" not in out  # untrue without Core Tools
    assert "scripts/run-local starts it only when Azure Functions Core Tools are installed" in storage_hint

    # list says the same, with the same hint, and never a bare SDK error.
    code, out, err, seconds = newcomer("list")
    assert code == 1 and out == "" and seconds < QUICK
    assert err.splitlines() == [f"error: storage unreachable: nothing listens on 127.0.0.1:{port} (connection refused)",
                                f"  -> {storage_hint[3:]}"]
    code, out, err, _ = newcomer("list", "--json")
    assert code == 1 and err == ""
    [problem] = json.loads(out)["problems"]
    assert "nothing listens" in problem["message"] and problem["hint"] == storage_hint[3:]

    # templates needs a token, hence the client secret from the vault: it names that cause, not POINT_URL.
    code, out, err, seconds = newcomer("templates")
    assert code == 1 and seconds < QUICK
    assert err.splitlines() == [f"error: Key Vault secret 'point-client-secret': {vault.split(': ', 1)[1]}",
                                f"  -> {vault_hint[3:]}"]


def test_azurite_not_running_on_its_default_ports_says_so(stack, newcomer, tmp_path):
    if any(_listening(port) for port in (10000, 10001, 10002)):
        pytest.skip("something listens on Azurite's default ports on this machine")
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"AzureWebJobsStorage":
                                                                         "UseDevelopmentStorage=true"}}))
    code, _, err, seconds = newcomer("list")
    assert code == 1 and seconds < QUICK
    assert "nothing listens on 127.0.0.1:1000" in err and "Azurite" in err and "is not running" in err


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_name_that_does_not_resolve_and_a_silent_server_are_told_apart():
    try:
        requests.get("https://deskbridge-no-such-host.invalid/", timeout=2)
    except requests.RequestException as exc:
        name = diagnose(exc, service="Syskit Point", setting="POINT_URL")
    assert name.kind == "name" and "deskbridge-no-such-host.invalid does not resolve" in name.message
    assert "POINT_URL" in name.hint

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/"
        try:
            requests.get(url, timeout=0.3)
        except requests.RequestException as exc:
            slow = diagnose(exc, service="Syskit Point", url=url, setting="POINT_URL")
    assert slow.kind == "timeout" and "did not answer in time (read timeout)" in slow.message
    assert "firewall" in slow.hint

    try:
        requests.get(f"https://127.0.0.1:{closed_port()}/", timeout=2)
    except requests.RequestException as exc:
        refused = diagnose(exc, service="Syskit Point")
    assert refused.kind == "refused" and "nothing listens" in refused.message


def test_an_error_that_is_no_connection_problem_is_not_diagnosed():
    assert diagnose(ValueError("bad JSON"), service="Syskit Point") is None
    assert diagnose(KeyError("x"), service="storage") is None


def test_the_ledger_names_the_cause_but_not_the_address(bridge):
    """lastError goes to anyone with a function key (the status route): the cause, without hosts or ports."""
    from conftest import fixture

    port = closed_port()
    bridge.configure(KEY_VAULT_URL=f"https://127.0.0.1:{port}")
    started = time.monotonic()
    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert (status, body["status"]) == (202, "queued") and time.monotonic() - started < QUICK
    _, shown = bridge.status(body["ticket"]["source"], body["ticket"]["id"])
    assert "Key Vault unreachable: nothing listens there (connection refused)" in shown["lastError"]
    assert str(port) not in json.dumps(shown) and "127.0.0.1" not in json.dumps(shown)
