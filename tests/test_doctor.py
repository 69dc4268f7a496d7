"""doctor and templates: the operator commands, against the local stack with faults switched on."""

import json

import pytest

import deskbridge
from deskbridge import cli, doctor
from devtools.stack import BRIDGE_APP_ID


@pytest.fixture
def run_cli(bridge, tmp_path, monkeypatch, capsys):
    """``python -m deskbridge ...`` in this process, with the bridge fixture's runtime."""
    monkeypatch.chdir(tmp_path)  # no local.settings.json from the project folder

    def run(*argv):
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def states(outcomes):
    return {o.name: o.state for o in outcomes}


def by_name(outcomes, name):
    return next(o for o in outcomes if o.name == name)


def test_healthy_configuration_passes_every_check(bridge, run_cli):
    bridge.stack.point.webhooks["https://bridge.example/api/point/events?code=abc"] = ["*"]
    code, out, _ = run_cli("doctor", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True and report["version"] == deskbridge.__version__
    found = {c["check"]: c["state"] for c in report["checks"]}
    for name in ("settings", "key vault", "other secrets", "token", "syskit point", "templates", "webhooks",
                 "storage"):
        assert found[name] == "ok", report
    assert "4 provisioning template(s)" in by_name(doctor.run_checks(bridge.runtime), "syskit point").message
    # The client secret was read from Key Vault, not assumed.
    assert bridge.stack.vault.reads("point-client-secret")


def test_human_output_names_the_failing_step_and_what_to_do(bridge, run_cli):
    bridge.stack.entra.apps[BRIDGE_APP_ID].secret_expired = True
    code, out, _ = run_cli("doctor")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"Point Desk Bridge {deskbridge.__version__}"
    [token_line] = [line for line in lines if line.startswith("FAIL") and " token " in line]
    assert "AADSTS7000222" in token_line and "expired" in token_line
    hint = lines[lines.index(token_line) + 1]
    assert hint.strip().startswith("->") and "POINT_CLIENT_SECRET_NAME" in hint
    assert "fix the first one first: token" in out
    assert bridge.stack.client_secret not in out


def test_missing_consent_is_a_403_from_point(bridge):
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles.discard("Point.Provisioning")
    outcomes = doctor.run_checks(bridge.runtime)
    point = by_name(outcomes, "syskit point")
    assert point.state == "fail" and "403" in point.message and "Point.Provisioning" in point.message
    assert "admin consent" in point.hint
    assert states(outcomes)["token"] == "ok"
    assert by_name(outcomes, "templates").state == "skip" and "syskit point failed" in by_name(
        outcomes, "templates").message


def test_wrong_secret_and_expired_secret_are_told_apart(bridge):
    app = bridge.stack.entra.apps[BRIDGE_APP_ID]
    app.secret = "not-what-key-vault-holds"
    token = by_name(doctor.run_checks(bridge.runtime), "token")
    assert token.state == "fail" and "AADSTS7000215" in token.message and "wrong" in token.message
    bridge.stack.reset()
    bridge.configure()
    bridge.stack.entra.apps[BRIDGE_APP_ID].secret_expired = True
    token = by_name(doctor.run_checks(bridge.runtime), "token")
    assert token.state == "fail" and "AADSTS7000222" in token.message and "new client secret" in token.hint


def test_wrong_point_api_app_id(bridge):
    bridge.configure(POINT_API_APP_ID="api://not-syskit-point")
    outcomes = doctor.run_checks(bridge.runtime)
    token = by_name(outcomes, "token")
    assert token.state == "fail" and "AADSTS500011" in token.message and "POINT_API_APP_ID" in token.message
    assert states(outcomes)["syskit point"] == "skip"


def test_unknown_and_mistyped_templates(bridge):
    bridge.configure(POINT_TEMPLATE_IDS="7,8,12", POINT_DEFAULT_TEMPLATE_ID="teams=8")
    templates = by_name(doctor.run_checks(bridge.runtime), "templates")
    assert templates.state == "fail"
    assert "template 12 in POINT_TEMPLATE_IDS does not exist" in templates.message
    assert "template 8 in POINT_DEFAULT_TEMPLATE_ID (teams) is a sites template" in templates.message
    assert "7 Project team (teams)" in templates.hint


def test_settings_and_key_vault_problems(bridge):
    bridge.configure(POINT_URL=None, POINT_CLIENT_SECRET_NAME="no-such-secret")
    outcomes = doctor.run_checks(bridge.runtime)
    assert by_name(outcomes, "settings").state == "fail" and "POINT_URL is not set" in by_name(
        outcomes, "settings").message
    # Every later check that needs the settings is skipped, and says why.
    assert {states(outcomes)[n] for n in ("key vault", "token", "syskit point", "templates")} == {"skip"}
    bridge.configure(POINT_URL=bridge.stack.point.url)
    vault = by_name(doctor.run_checks(bridge.runtime), "key vault")
    assert vault.state == "fail" and "no-such-secret" in vault.message and "POINT_CLIENT_SECRET_NAME" in vault.hint


def test_webhook_warnings_and_poisoned_messages(bridge):
    outcomes = doctor.run_checks(bridge.runtime)
    webhooks = by_name(outcomes, "webhooks")
    assert webhooks.state == "warn" and "webhooks register" in webhooks.hint
    from deskbridge.retries import QueueKey

    bridge.stack.point.webhooks["https://bridge.example/api/point/events"] = ["*"]
    bridge.configure(POINT_WEBHOOK_KEY_SECRET_NAME=None)
    webhooks = by_name(doctor.run_checks(bridge.runtime), "webhooks")
    assert webhooks.state == "fail" and "503" in webhooks.message
    assert "POINT_WEBHOOK_KEY_SECRET_NAME" in webhooks.hint
    bridge.runtime.retry_queue.to_poison(QueueKey("jira", "HR-1"))
    storage = by_name(doctor.run_checks(bridge.runtime), "storage")
    assert storage.state == "warn" and "poisoned 1" in storage.message


def test_a_check_added_elsewhere_runs_in_place(bridge, monkeypatch):
    from deskbridge import checks

    monkeypatch.setattr(checks, "CHECKS", list(checks.CHECKS))

    @doctor.check("secret expiry", after="key vault", requires=("key vault",))
    def secret_expiry(ctx):
        return doctor.Result.warn(f"{ctx.settings.point_client_secret_name} expires soon", "rotate it")

    outcomes = doctor.run_checks(bridge.runtime)
    names = [o.name for o in outcomes]
    assert names[names.index("key vault") + 1] == "secret expiry"
    assert by_name(outcomes, "secret expiry") == doctor.Outcome(
        "secret expiry", "warn", "point-client-secret expires soon", "rotate it")


def test_templates_command_table_and_json(bridge, run_cli):
    code, out, _ = run_cli("templates")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TYPE"]
    assert lines[1].split() == ["7", "Project", "team", "teams"]
    assert len(lines) == 5
    code, out, _ = run_cli("templates", "--json")
    assert code == 0
    assert [(t["id"], t["workspaceType"]) for t in json.loads(out)] == [
        (7, "teams"), (8, "sites"), (9, "groups"), (10, "yammer")]


def test_templates_command_fails_with_a_reason(bridge, run_cli):
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles.discard("Point.Provisioning")
    code, out, err = run_cli("templates", "--json")
    assert code == 1 and err == ""  # one form: the JSON object alone
    [problem] = json.loads(out)["problems"]
    assert "403" in problem["message"] and "admin consent" in problem["hint"]
    code, out, err = run_cli("templates")
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith("error: Syskit Point refused the token (403)")
    assert err.splitlines()[1].startswith("  -> in Entra ID, app POINT_CLIENT_ID > API permissions")


def test_every_command_has_help(capsys):
    commands = ["doctor", "demo", "templates", "list", "replay", "webhooks register", "webhooks list",
                "webhooks delete"]
    for name in commands:
        with pytest.raises(SystemExit) as exited:
            cli.main([*name.split(), "--help"])
        assert exited.value.code == 0
        assert "--json" in capsys.readouterr().out, name


def test_webhooks_help_explains_each_action(capsys):
    with pytest.raises(SystemExit):
        cli.main(["webhooks", "--help"])
    listing = capsys.readouterr().out
    assert all(action in listing for action in ("register", "list", "delete"))
    with pytest.raises(SystemExit):
        cli.main(["webhooks", "register", "--help"])
    register = capsys.readouterr().out
    assert "usage: python -m deskbridge webhooks register" in register and "URL" in register
    assert "--types" in register and "Point.Admin" in register and "--function-name point_events" in register


# == the desks ======================================================================


def desk_outcomes(bridge):
    outcomes = doctor.run_checks(bridge.runtime)
    return {o.name: o for o in outcomes if o.name.startswith(("jira", "servicenow"))}


def test_desks_pass_when_token_permissions_and_access_are_right(bridge):
    bridge.configure(JIRA_TRANSITION_COMPLETED="Done", JIRA_TRANSITION_FAILED="Provisioning failed")
    bridge.stack.jira.granted.add("ADMINISTER")  # so the workflow can be read
    desks = desk_outcomes(bridge)
    assert {name: o.state for name, o in desks.items()} == {
        "jira": "ok", "jira permissions": "ok", "jira transitions": "ok", "servicenow": "ok"}
    assert "acting as Point Desk Bridge" in desks["jira"].message
    assert "Transition issues" in desks["jira permissions"].message
    assert "RITM0010452" in desks["servicenow"].message and "sn_request_write" in desks["servicenow"].message
    [query] = bridge.stack.jira.calls_to("GET", "/rest/api/3/mypermissions")
    assert query.query["projectKey"] == ["HR"]
    assert set(query.query["permissions"][0].split(",")) == {
        "BROWSE_PROJECTS", "USER_PICKER", "ADD_COMMENTS", "SERVICEDESK_AGENT", "TRANSITION_ISSUES"}
    [read] = bridge.stack.servicenow.calls_to("GET", "/api/now/table/sc_req_item")
    assert read.query["sysparm_limit"] == ["1"]
    assert bridge.stack.servicenow.calls_to("PATCH") == [] and bridge.stack.jira.calls_to("POST") == []


def test_a_wrong_jira_token_is_named_and_what_needs_it_is_skipped(bridge, run_cli):
    bridge.stack.vault.set_secret("jira-api-token", "not-the-token")
    code, out, _ = run_cli("doctor")
    assert code == 1
    [line] = [line for line in out.splitlines() if line.startswith("FAIL") and " jira " in line]
    assert "Jira refused the API token (401) for bridge@contoso.com" in line
    assert "JIRA_API_TOKEN_SECRET_NAME" in out.splitlines()[out.splitlines().index(line) + 1]
    assert "not-the-token" not in out and bridge.stack.jira_token not in out
    desks = desk_outcomes(bridge)
    assert desks["jira permissions"].state == "skip" and "jira failed" in desks["jira permissions"].message


def test_a_missing_jira_permission_is_named(bridge):
    bridge.stack.jira.granted -= {"USER_PICKER", "SERVICEDESK_AGENT"}
    permissions = desk_outcomes(bridge)["jira permissions"]
    assert permissions.state == "fail"
    assert "Browse users and groups (global) (USER_PICKER)" in permissions.message
    assert "Service project agent) (SERVICEDESK_AGENT), needed for internal notes" in permissions.message
    assert "Global permissions" in permissions.hint and "Service Desk Team" in permissions.hint
    bridge.configure(JIRA_INTERNAL_NOTE="false")  # plain comments: no agent seat needed
    permissions = desk_outcomes(bridge)["jira permissions"]
    assert "SERVICEDESK_AGENT" not in permissions.message and "USER_PICKER" in permissions.message


def test_jira_project_problems(bridge):
    bridge.configure(JIRA_PROJECT_KEY="NOPE")
    permissions = desk_outcomes(bridge)["jira permissions"]
    assert permissions.state == "fail" and "no project NOPE" in permissions.message
    bridge.configure(JIRA_PROJECT_KEY=None)
    permissions = desk_outcomes(bridge)["jira permissions"]
    assert permissions.state == "warn" and "check by hand" in permissions.message
    assert "Browse users and groups (global) for looking up e-mail addresses" in permissions.message
    bridge.configure(JIRA_PROJECT_KEY="HR")
    bridge.stack.jira.service_management = False  # plain Jira Software: no agent permission exists
    permissions = desk_outcomes(bridge)["jira permissions"]
    assert permissions.state == "fail" and "SERVICEDESK_AGENT" in permissions.message
    assert "JIRA_INTERNAL_NOTE=false" in permissions.hint


def test_a_missing_jira_transition_is_named(bridge):
    bridge.configure(JIRA_TRANSITION_COMPLETED="Done", JIRA_TRANSITION_FAILED="Provisioning failed")
    bridge.stack.jira.granted.add("ADMINISTER")
    bridge.stack.jira.transitions = [t for t in bridge.stack.jira.transitions if t["name"] != "Provisioning failed"]
    transitions = desk_outcomes(bridge)["jira transitions"]
    assert transitions.state == "fail"
    assert "JIRA_TRANSITION_FAILED: no transition named 'Provisioning failed' in HR's workflows" in transitions.message
    assert "JIRA_TRANSITION_COMPLETED" not in transitions.message and "Done" in transitions.hint
    [search] = bridge.stack.jira.calls_to("GET", "/rest/api/3/workflow/search")
    assert search.query["expand"] == ["transitions,projects"]


def test_jira_transitions_without_administer_are_left_to_check_by_hand(bridge):
    bridge.configure(JIRA_TRANSITION_COMPLETED="Done")
    transitions = desk_outcomes(bridge)["jira transitions"]
    assert transitions.state == "warn" and "Only Jira administrators can access workflows" in transitions.message
    assert "JIRA_TRANSITION_COMPLETED='Done'" in transitions.message


def test_servicenow_wrong_password_and_acl_failures_are_named(bridge):
    bridge.stack.vault.set_secret("servicenow-password", "wrong-password")
    servicenow = desk_outcomes(bridge)["servicenow"]
    assert servicenow.state == "fail" and "refused the credentials of bridge.integration (401" in servicenow.message
    assert "SERVICENOW_PASSWORD_SECRET_NAME" in servicenow.hint
    bridge.stack.reset()
    bridge.configure()
    bridge.stack.servicenow.can_read = False
    servicenow = desk_outcomes(bridge)["servicenow"]
    assert servicenow.state == "fail" and "an ACL denied reading sc_req_item (403" in servicenow.message
    assert "Failed API level ACL Validation" in servicenow.message and "sn_request_write" in servicenow.hint
    bridge.stack.servicenow.can_read, bridge.stack.servicenow.rows_hidden = True, True
    servicenow = desk_outcomes(bridge)["servicenow"]
    assert servicenow.state == "warn" and "sees no record" in servicenow.message


def test_desks_not_configured_are_skipped(bridge):
    bridge.configure(JIRA_URL=None, SERVICENOW_URL=None)
    desks = desk_outcomes(bridge)
    assert {o.state for o in desks.values()} == {"skip"}
    assert bridge.stack.jira.calls == [] and bridge.stack.servicenow.calls == []


def test_desks_that_cannot_be_reached_say_why_and_where(bridge):
    bridge.configure(JIRA_URL="https://127.0.0.1:9", SERVICENOW_URL="https://127.0.0.1:9")  # nothing listens there
    desks = desk_outcomes(bridge)
    for name in ("jira", "servicenow"):
        assert desks[name].state == "fail"
        assert "nothing listens on 127.0.0.1:9 (connection refused)" in desks[name].message, desks[name].message
        assert "ConnectionError" not in desks[name].message
    assert "JIRA_URL" in desks["jira"].hint and "SERVICENOW_URL" in desks["servicenow"].hint


def test_the_token_holding_point_admin_is_a_warning(bridge, monkeypatch):
    """Only webhook registration needs Point.Admin, and setup does it with an admin app of its own."""
    monkeypatch.setattr(bridge.stack.entra, "claims_in_tokens", True)
    bridge.configure()
    token = by_name(doctor.run_checks(bridge.runtime), "token")
    assert token.state == "warn" and "holds Point.Admin" in token.message and "remove Point.Admin" in token.hint
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles = {"Point.Provisioning"}
    bridge.configure()
    outcomes = doctor.run_checks(bridge.runtime)
    assert by_name(outcomes, "token").state == "ok" and by_name(outcomes, "syskit point").state == "ok"
    assert doctor.token_roles("not.a-jwt.at-all") == frozenset() and doctor.token_roles("opaque") == frozenset()


def test_a_bridge_app_without_point_admin_is_not_a_warning(bridge):
    """Least privilege is the recommended setup: listing webhooks needs Point.Admin, so doctor does not list them."""
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles = {"Point.Provisioning"}
    bridge.configure()
    outcomes = doctor.run_checks(bridge.runtime)
    webhooks = by_name(outcomes, "webhooks")
    assert webhooks.state == "skip" and "Point.Provisioning only, as it should" in webhooks.message
    assert "warn" not in {by_name(outcomes, name).state for name in ("token", "syskit point", "webhooks")}
