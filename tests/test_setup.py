"""``python -m deskbridge setup`` and ``doctor --deployed``, end to end, as azd's postprovision hook runs them.

Each run is the real command in its own process, against loopback stand-ins: Azure Resource Manager
(function keys, app settings, the vault's secrets; devtools/arm.py), Entra ID (the admin app's client
credentials), Key Vault, Syskit Point (registration, options), and the deployed app's health route. The
deployer's token comes from the real AzureDeveloperCliCredential, which runs a fake ``azd`` put first on
PATH; the azd environment is what that ``azd env get-values`` prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deskbridge.settings import SETTING_NAMES
from devtools.arm import ARM_RESOURCE, ArmStandIn, FunctionAppHealth, dotenv, write_fake_azd
from devtools.entra import EntraStandIn
from devtools.keyvault import KeyVaultStandIn
from devtools.point_simulator import PointSimulator
from devtools.tls import local_tls

ROOT = Path(__file__).resolve().parent.parent
TENANT = "11111111-2222-3333-4444-555555555555"
SUBSCRIPTION = "00000000-aaaa-bbbb-cccc-000000000001"
API_APP = "api://syskit-point-setup"
ADMIN_ID = "admin-app-for-setup"
ADMIN_SECRET = "admin-secret-" + "x7Qp" * 8  # distinctive, to look for anywhere it must not be
JIRA_WEBHOOK_SECRET_VALUE = "jira-hook-" + "k2Lm" * 8


@dataclass
class World:
    tmp: Path
    entra: EntraStandIn
    vault: KeyVaultStandIn
    point: PointSimulator
    arm: ArmStandIn
    app: FunctionAppHealth
    env: dict[str, str]
    process_env: dict[str, str]
    env_file: Path

    def run(self, *args: str, admin_secret: bool = True) -> subprocess.CompletedProcess[str]:
        environ = dict(self.process_env)
        if admin_secret:
            environ["DESKBRIDGE_ADMIN_CLIENT_SECRET"] = ADMIN_SECRET
        return subprocess.run(
            [sys.executable, "-m", "deskbridge", *args],
            cwd=self.tmp / "project",
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    tls = local_tls(tmp_path / "tls")
    context = tls.server_context
    entra = EntraStandIn(TENANT, tls=context)
    vault = KeyVaultStandIn(entra, tls=context)
    point = PointSimulator(entra, API_APP, tls=context)
    arm = ArmStandIn(entra, vault, SUBSCRIPTION, "rg-bridge", "func-bridge", "kv-bridge", tls=context)
    app = FunctionAppHealth(tls=context)
    standins = (entra, vault, point, arm, app)
    for standin in standins:
        standin.start()
    entra.register(ADMIN_ID, ADMIN_SECRET, roles={"Point.Admin"})
    env = {
        "AZURE_ENV_NAME": "bridge",
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg-bridge",
        "AZURE_FUNCTION_APP_NAME": "func-bridge",
        "FUNCTION_APP_URL": app.url,
        "AZURE_KEY_VAULT_NAME": "kv-bridge",
        "AZURE_KEY_VAULT_ENDPOINT": vault.url + "/",
        "POINT_URL": point.url,
        "AZURE_TENANT_ID": TENANT,  # POINT_TENANT_ID left empty: the template and setup take this tenant
        "POINT_CLIENT_ID": "runtime-app",
        "POINT_API_APP_ID": API_APP,
        "POINT_TEMPLATE_IDS": "7,8",
        "POINT_WEBHOOK_KEY_SECRET_NAME": "point-webhook-key",
        "JIRA_URL": "https://contoso.atlassian.net",
        "JIRA_EMAIL": "bridge@contoso.com",
        "JIRA_API_TOKEN_SECRET_NAME": "jira-api-token",
        "JIRA_WEBHOOK_SECRET_NAME": "jira-webhook-secret",
        "JIRA_PROJECT_KEY": "HR",
        "JIRA_WEBHOOK_SECRET": JIRA_WEBHOOK_SECRET_VALUE,  # a secret value azd passes to the template
        "SERVICENOW_URL": "https://contoso.service-now.com",
        "SERVICENOW_USERNAME": "bridge.integration",
        "SERVICENOW_PASSWORD_SECRET_NAME": "servicenow-password",
        "SERVICENOW_SIGNING_SECRET_NAME": "servicenow-signing-secret",
    }
    # What azd provision wrote on the app: the bridge's settings from the environment, and the derived ones.
    arm.app_settings = {name: value for name, value in env.items() if name in SETTING_NAMES} | {
        "KEY_VAULT_URL": env["AZURE_KEY_VAULT_ENDPOINT"],
        "AzureWebJobsStorage__accountName": "stbridge",
        "FUNCTIONS_EXTENSION_VERSION": "~4",
        "POINT_CLIENT_SECRET_NAME": "point-client-secret",
        "POINT_TENANT_ID": TENANT,
    }
    (tmp_path / "project").mkdir()
    env_file = tmp_path / "azd.env"
    env_file.write_text(dotenv(env))
    bin_dir = tmp_path / "bin"
    write_fake_azd(bin_dir, sys.executable)
    process_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "REQUESTS_CA_BUNDLE": str(tls.ca_bundle),
        "AZURE_AUTHORITY_HOST": entra.url,
        "DESKBRIDGE_MANAGEMENT_URL": arm.url,
        "FAKE_AZD_TOKEN": entra.issue("deployer@contoso.com", ARM_RESOURCE),
        "FAKE_AZD_ENV_FILE": str(env_file),
    }
    yield World(tmp_path, entra, vault, point, arm, app, env, process_env, env_file)
    for standin in standins:
        standin.stop()


def lines_after(out: str, heading: str) -> list[str]:
    return [line.strip() for line in out.split(heading, 1)[1].splitlines()[1:]]


def test_setup_twice_adds_each_key_once_registers_once_and_stores_the_signature_key(world):
    first = world.run("setup", "--point-admin-client-id", ADMIN_ID, "--jira-project", "HR", "--jira-project", "OPS")
    assert first.returncode == 0, first.stdout + first.stderr
    keys = world.arm.function_keys
    jira_key, events_key = keys["jira"]["deskbridge-jira"], keys["point_events"]["deskbridge-point_events"]
    servicenow_key = keys["servicenow"]["deskbridge-servicenow"]
    # One key per desk route the environment configures, and one for Syskit Point's events; nothing else.
    assert sorted(c.path.rsplit("/", 1)[1] for c in world.arm.key_creations()) == [
        "deskbridge-jira",
        "deskbridge-point_events",
        "deskbridge-servicenow",
    ]
    assert "deskbridge-provision" not in keys["provision"]
    out = first.stdout
    # A new key's URL is printed in full, once; the events key never (Syskit Point gets it, nobody pastes it).
    assert f"{world.app.url}/api/jira?code={jira_key}" in out and events_key not in out
    # The webhook: registered with the events key, and the signature key stored before it, by ARM, in the vault.
    assert world.point.webhooks == {f"{world.app.url}/api/point/events?code={events_key}": ["*"]}
    assert world.vault.secrets["point-webhook-key"].value == world.point.signature_key
    assert world.point.signature_key not in out + first.stderr
    # The desk's side, filled in.
    jira = lines_after(out, "In Jira: Settings (gear) > System > WebHooks > Create a WebHook")
    assert jira[:7] == [
        "Name:    Point Desk Bridge",
        "Status:  Enabled",
        f"URL:     {world.app.url}/api/jira?code={jira_key}",
        'JQL:     project in (HR, OPS) AND status = "Approved"',
        "Events:  Issue: updated (only)",
        "Exclude body: unchecked",
        "Secret:  the Jira webhook secret you set in the azd environment (in Key Vault as jira-webhook-secret)",
    ]
    servicenow = lines_after(out, "In ServiceNow: System Properties > All Properties > New")
    assert servicenow[0].split() == ["deskbridge.url", "string", world.app.url]
    assert servicenow[1].split() == ["deskbridge.function_key", "password2", servicenow_key]
    assert "deskbridge.signing_key   password2" in servicenow[2] and "servicenow-signing-secret" in servicenow[2]
    assert "ok   app settings" in out and "ok   health" in out and out.rstrip().endswith("Setup finished.")

    second = world.run("setup", "--point-admin-client-id", ADMIN_ID)  # the project: JIRA_PROJECT_KEY
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(world.arm.key_creations()) == 3  # none added the second time
    assert world.arm.function_keys == keys
    for key in (jira_key, servicenow_key, events_key):
        assert key not in second.stdout + second.stderr  # an existing key is not shown again
    assert "jira: key deskbridge-jira exists (not shown again" in second.stdout
    assert f"URL:     {world.app.url}/api/jira?code=***" in second.stdout
    assert 'JQL:     project in (HR) AND status = "Approved"' in second.stdout
    assert "already registered:" in second.stdout and len(world.point.calls_to("POST", "/v1.0/webhooks")) == 1
    assert list(world.point.webhooks) == [f"{world.app.url}/api/point/events?code={events_key}"]
    # The projects the bridge may write to, when the azd environment limits them, are the JQL's
    world.env_file.write_text(dotenv(world.env | {"JIRA_PROJECT_KEYS": "HR,IT"}))
    third = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert 'JQL:     project in (HR, IT) AND status = "Approved"' in third.stdout, third.stdout
    world.env_file.write_text(dotenv(world.env))

    # The admin app's secret: nowhere but in Entra ID's own check of it.
    everything = first.stdout + first.stderr + second.stdout + second.stderr
    assert ADMIN_SECRET not in everything and JIRA_WEBHOOK_SECRET_VALUE not in everything
    tokens = [world.process_env["FAKE_AZD_TOKEN"], *world.entra._tokens]  # every bearer token of the runs
    assert len(tokens) >= 3 and not [token for token in tokens if token in everything]
    assert all(ADMIN_SECRET not in s.value for s in world.vault.secrets.values())
    assert all(ADMIN_SECRET.encode() not in c.body for c in world.arm.calls + world.point.calls)
    assert ADMIN_SECRET not in json.dumps(world.arm.app_settings)
    for path in world.tmp.rglob("*"):
        if path.is_file():
            assert ADMIN_SECRET.encode() not in path.read_bytes(), path
    # ... which Entra ID did see, for the admin app's token, the only token Syskit Point was called with.
    assert {c.form()["client_id"] for c in world.entra.token_requests()} == {ADMIN_ID}


def test_without_an_admin_app_setup_keys_the_desks_and_skips_the_webhook(world):
    done = world.run("setup", "--desk", "provision", admin_secret=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [c.path.rsplit("/", 1)[1] for c in world.arm.key_creations()] == ["deskbridge-provision"]
    assert "skipped: no Syskit Point admin app given" in done.stdout
    assert world.point.calls == [] and world.vault.secrets == {}
    key = world.arm.function_keys["provision"]["deskbridge-provision"]
    assert f"{world.app.url}/api/provision?code={key}" in done.stdout
    again = world.run("setup", "--desk", "provision", "--json", admin_secret=False)
    summary = json.loads(again.stdout)  # the account of the run is on stderr
    assert again.returncode == 0 and summary["ok"] is True and summary["webhook_registered"] is None
    assert summary["keys"] == [
        {
            "function": "provision",
            "name": "deskbridge-provision",
            "created": False,
            "url": f"{world.app.url}/api/provision?code=***",
        }
    ]
    assert "1. Function keys" in again.stderr and key not in again.stdout + again.stderr


def test_a_step_that_fails_is_named_and_the_next_run_finishes_it(world):
    world.arm.fail_next(1, 500, method="PUT", path_prefix=f"/subscriptions/{SUBSCRIPTION}")
    world.point.fail_next(1, 503, method="POST", path_prefix="/v1.0/webhooks")
    first = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert first.returncode == 1
    assert "FAIL jira: Azure Resource Manager answered 500" in first.stdout
    assert "FAIL Syskit Point:" in first.stdout and "Not finished: key for jira, webhook." in first.stdout
    assert world.point.webhooks == {}
    second = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert second.returncode == 0, second.stdout
    assert sorted(world.arm.function_keys["jira"]) == ["default", "deskbridge-jira"]
    assert len(world.point.webhooks) == 1 and "registered " in second.stdout


def test_the_admin_secret_is_refused_when_it_is_stored_in_the_azd_environment(world):
    world.env_file.write_text(dotenv(world.env | {"DESKBRIDGE_ADMIN_CLIENT_SECRET": ADMIN_SECRET}))
    done = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert done.returncode == 1 and world.arm.calls == [] and world.point.calls == []
    assert "error: DESKBRIDGE_ADMIN_CLIENT_SECRET is stored in the azd environment; it must not be" in done.stderr
    assert ADMIN_SECRET not in done.stdout + done.stderr


def test_doctor_deployed_names_each_setting_that_differs_and_never_a_value(world):
    healthy = world.run("doctor", "--deployed")
    assert healthy.returncode == 0 and "ok    app settings  the app's 16 bridge setting(s) match" in healthy.stdout
    world.arm.app_settings |= {
        "JIRA_APPROVED_STATUS": "Done-by-hand",  # set on the app by hand: the next provision removes it
        "POINT_TEMPLATE_IDS": "7,8,99",
        "SERVICENOW_TOKEN_SECRET_NAME": "snow-token-by-hand",  # a secret name no azd value gives
        "JIRA_WEBHOOK_SECRET_NAME": "jira-webhook-secret",  # given by the azd environment: no difference
        "KEY_VAULT_URL": "https://another-vault.vault.azure.net/",
        "BRIDGE_LEDGER_TABLE": "provisioningrequests",  # the template's default for an empty azd value: no difference
        "BRIDGE_MAX_OWNERS": "",  # an empty value, as the template writes one the azd environment leaves empty
    }
    del world.arm.app_settings["JIRA_EMAIL"]
    done = world.run("doctor", "--deployed")
    assert done.returncode == 1, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("FAIL  app settings  5 setting(s) differ from the azd environment: ")
    assert first.endswith(
        "JIRA_APPROVED_STATUS (only on the app), JIRA_EMAIL (missing on the app), KEY_VAULT_URL (differs), "
        "POINT_TEMPLATE_IDS (differs), SERVICENOW_TOKEN_SECRET_NAME (only on the app)"
    )
    assert "azd env set NAME value, then azd provision" in done.stdout
    for value in ("Done-by-hand", "7,8,99", "snow-token-by-hand", "another-vault"):
        assert value not in done.stdout
    assert "ok    health" in done.stdout
    as_json = json.loads(world.run("doctor", "--deployed", "--json").stdout)
    assert as_json["ok"] is False and [c["state"] for c in as_json["checks"]] == ["fail", "ok"]


def test_doctor_deployed_says_when_azd_is_not_signed_in(world):
    world.process_env["FAKE_AZD_TOKEN"] = "tok-not-issued"
    done = world.run("doctor", "--deployed")
    assert done.returncode == 1
    assert "FAIL  app settings  Azure Resource Manager answered 401" in done.stdout
    assert "InvalidAuthenticationToken" in done.stdout


def test_local_settings_are_written_from_the_azd_environment(world):
    target = world.tmp / "project" / "local.settings.json"
    done = world.run("setup", "--local-settings", admin_secret=False)
    assert done.returncode == 0, done.stderr
    values = json.loads(target.read_text())["Values"]
    assert values["KEY_VAULT_URL"] == world.env["AZURE_KEY_VAULT_ENDPOINT"]
    assert values["POINT_URL"] == world.point.url and values["JIRA_WEBHOOK_SECRET_NAME"] == "jira-webhook-secret"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["POINT_TENANT_ID"] == TENANT  # the template's default for an empty one
    assert set(values) <= SETTING_NAMES | {"FUNCTIONS_WORKER_RUNTIME"}
    assert JIRA_WEBHOOK_SECRET_VALUE not in target.read_text()  # secret values are not settings
    again = world.run("setup", "--local-settings", admin_secret=False)
    assert again.returncode == 1 and "local.settings.json exists; not overwritten" in again.stderr
    forced = world.run("setup", "--local-settings", "--force", admin_secret=False)
    assert forced.returncode == 0 and (target.parent / "local.settings.json.bak").is_file()


def test_right_after_provision_with_no_code_deployed_setup_waits_for_azd_deploy(world):
    """azd up runs the hook after provision, before deploy: no function exists yet to hold a key."""
    world.arm.deployed, world.app.healthy = False, False
    early = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert early.returncode == 0, early.stdout + early.stderr
    assert "the app has no functions yet: its code is not deployed" in early.stdout
    assert re.search(r"^   skip +health +after azd deploy$", early.stdout, re.MULTILINE)
    assert early.stdout.rstrip().endswith("Setup continues after azd deploy.")
    assert world.arm.key_creations() == [] and world.point.calls == []
    world.arm.deployed, world.app.healthy = True, True  # azd deploy; then the postdeploy hook
    after = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert after.returncode == 0 and len(world.arm.key_creations()) == 3 and len(world.point.webhooks) == 1


def test_azd_runs_setup_after_provision_and_deploy_on_posix_and_windows(world):
    import yaml

    hooks = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]
    for event in ("postprovision", "postdeploy"):
        assert hooks[event]["posix"]["run"] == "./scripts/setup" and hooks[event]["posix"]["interactive"] is True
        assert hooks[event]["windows"] == {"shell": "pwsh", "run": "./scripts/setup.ps1", "interactive": True} | (
            {"continueOnError": True} if event == "postprovision" else {}
        )
    assert "-m deskbridge setup @args" in (ROOT / "scripts" / "setup.ps1").read_text(encoding="utf-8")
    # The posix hook, as azd runs it (sh, from anywhere), with this checkout's .venv.
    target = world.tmp / "from-hook.json"
    done = subprocess.run(
        ["sh", str(ROOT / "scripts" / "setup"), "--local-settings", "--output", str(target)],
        cwd=world.tmp,
        env=world.process_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text())["Values"]["POINT_URL"] == world.point.url


# == the crash matrix of setup ==================================================================
# Every outbound HTTP call setup makes (Entra ID for the admin app, ARM, Syskit Point, the health route)
# fails in turn, before it is sent or after the remote acted (the process dies: crash_harness.Crash); the
# recovery is what the operator or the next azd hook does: run setup again. After it, each key exists once
# and was added once, the webhook is registered once, with the key the function holds, and the signature key
# is in the vault.


def reset(world: World) -> None:
    from devtools.arm import FUNCTIONS

    world.arm.function_keys = {f: {"default": f"default-{f}-" + "0" * 32} for f in FUNCTIONS}
    world.vault.secrets.clear()
    world.point.webhooks.clear()
    for standin in (world.arm, world.point, world.entra, world.app):
        standin.clear()


def in_process(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """setup as the hook runs it, in this process (where the crash harness sees every call)."""
    from deskbridge import cli

    for name, value in (world.process_env | {"DESKBRIDGE_ADMIN_CLIENT_SECRET": ADMIN_SECRET}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(world.tmp / "project")
    return lambda: cli.main(["setup", "--point-admin-client-id", ADMIN_ID])


def converged(world: World) -> list[str]:
    problems = []
    puts: dict[str, int] = {}
    for call in world.arm.key_creations():
        puts[call.path.rsplit("/", 1)[1]] = puts.get(call.path.rsplit("/", 1)[1], 0) + 1
    wanted = {
        "jira": "deskbridge-jira",
        "servicenow": "deskbridge-servicenow",
        "point_events": "deskbridge-point_events",
    }
    for function, name in wanted.items():
        if name not in world.arm.function_keys[function]:
            problems.append(f"no key {name}")
        if puts.get(name) != 1:
            problems.append(f"key {name} added {puts.get(name, 0)} times")
    events = world.arm.function_keys["point_events"].get("deskbridge-point_events")
    if list(world.point.webhooks) != [f"{world.app.url}/api/point/events?code={events}"]:
        problems.append(f"webhooks: {list(world.point.webhooks)}")
    if len(world.point.calls_to("POST", "/v1.0/webhooks")) != 1:
        problems.append(f"{len(world.point.calls_to('POST', '/v1.0/webhooks'))} registrations")
    stored = world.vault.secrets.get("point-webhook-key")
    if stored is None or stored.value != world.point.signature_key:
        problems.append("signature key not stored")
    return problems


def test_crash_matrix_of_setup(world, monkeypatch, capsys):
    from crash_harness import KINDS, Crash, Outbound

    from devtools.arm import FunctionAppHealth  # noqa: F401 - the names below are the stand-ins' ports

    names = {
        world.arm.port: "arm",
        world.point.port: "point",
        world.entra.port: "entra",
        world.app.port: "app",
        world.vault.port: "keyvault",
    }
    outbound = Outbound(names).install(monkeypatch)
    run = in_process(world, monkeypatch)
    with outbound.watch() as recorded:
        assert run() == 0
    assert converged(world) == []
    recorded = list(recorded)
    capsys.readouterr()
    problems = []
    for index, call in enumerate(recorded):
        for kind in KINDS:
            reset(world)
            with outbound.watch(index, kind) as calls:
                try:
                    run()
                except Crash:
                    pass
            if calls[: index + 1] != recorded[: index + 1]:
                problems.append(f"call {index} ({kind}): went another way: {calls[: index + 1]}")
                continue
            again = run()  # the recovery: setup again
            problems += [f"call {index} {call!r} ({kind}): {p}" for p in converged(world)]
            if again != 0:
                problems.append(f"call {index} {call!r} ({kind}): the second run exited {again}")
            out = capsys.readouterr().out
            assert ADMIN_SECRET not in out
    with capsys.disabled():
        print(f"\ncrash matrix, setup: {len(recorded)} calls x {len(KINDS)} failure kinds; {len(problems)} problems")
        for n, call in enumerate(recorded):
            print(f"  {n:2d} {call}")
    assert len(recorded) >= 10 and problems == []


def test_a_registration_of_the_events_route_with_an_older_key_is_replaced(world):
    stale = f"{world.app.url}/api/point/events?code=an-older-key"
    elsewhere = "https://other.example/api/point/events?code=theirs"
    world.point.webhooks |= {stale: ["*"], elsewhere: ["*"]}
    done = world.run("setup", "--point-admin-client-id", ADMIN_ID)
    assert done.returncode == 0, done.stdout + done.stderr
    events = world.arm.function_keys["point_events"]["deskbridge-point_events"]
    assert sorted(world.point.webhooks) == sorted([elsewhere, f"{world.app.url}/api/point/events?code={events}"])
    assert "removed 1 registration(s) of the same route with an older key" in done.stdout
    assert "an-older-key" not in done.stdout
