"""Trust boundaries between the approval routes (issue 21): a caller reaches only what its route is for.

Through the registered functions, against Azurite and the loopback stand-ins (Jira among them). Each attack
of the issue is a test that passed for the attacker on main 1ef2909: a holder of only the /api/provision key
blocking a Jira approval, taking over a refused Jira request, and writing to any Jira issue with the bridge's
account. Then: desk identifiers validated at intake and percent-encoded on the way out, list settings that
name nothing refused, and answers that name what failed, never which secret or which Jira user.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from conftest import fixture

from deskbridge.desks.jira_client import JiraClient
from deskbridge.errors import JiraError
from deskbridge.ledger import LedgerRecord
from deskbridge.writeback import desk_targets
from devtools.stack import SAMPLE_JIRA_FIELDS

HIDDEN_OWNER = ("557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10", "Hidden Harry", "harry@contoso.com")
LURE = "Your Microsoft 365 password expires today: confirm it at https://login.contoso-verify.example"


@pytest.fixture
def desk(bridge):
    """The bridge with the sample Jira project's field mapping, the fixture's hidden owner known to Jira, and a
    transition for failures: everything Jira write-back can do is switched on."""
    bridge.configure(JIRA_TRANSITION_FAILED="Provisioning failed", **SAMPLE_JIRA_FIELDS)
    bridge.stack.jira.add_user(*HIDDEN_OWNER)
    return bridge


def provision_body(source: str, ticket: str, **changes) -> dict:
    body = fixture("syskit_jira_custom_body.json") | {"comment": "made by a script"} | changes
    return body | {"ticket": {"source": source, "id": ticket}}


def write_back(bridge) -> int:
    return bridge.drain("BRIDGE_DESK_QUEUE", "desk_update")


def jira_paths(bridge) -> list[str]:
    return [f"{c.method} {c.path}" for c in bridge.stack.jira.calls]


# == 1. records belong to the route that made them =====================================================


def test_a_provision_call_naming_a_jira_issue_cannot_block_its_jira_approval(desk):
    status, first = desk.http("provision", provision_body("jira", "HR-42"))
    assert status == 201, first
    status, answer = desk.http("jira", fixture("jira_webhook_approved.json"))
    # main 1ef2909: 200 {"duplicate": true}, and Syskit Point never got the approved Jira request.
    assert status == 201 and "duplicate" not in answer, answer
    assert answer["ticket"] == {"source": "jira", "id": "HR-42"}
    assert first["ticket"] == {"source": "provision-jira", "id": "HR-42"}  # the provision route's own record
    sent = [call.json()["displayName"] for call in desk.stack.point.provision_calls()]
    assert sent == ["Marketing Campaign 2027", "Project Apollo"]
    assert desk.record("jira", "HR-42").reply_to == {"issueKey": "HR-42"}


def test_a_provision_call_cannot_take_over_a_jira_request_syskit_point_refused(desk):
    desk.stack.point.templates = [t for t in desk.stack.point.templates if t["workspaceType"] != "teams"]
    status, answer = desk.http("jira", fixture("jira_webhook_approved.json"))
    assert (status, answer["status"]) == (422, "rejected"), answer
    before = desk.record("jira", "HR-42")
    desk.stack.point.reset_behaviour()  # the attacker's body would be provisioned
    taken = provision_body("jira", "HR-42", owners=["mallory@contoso.com"], displayName="Apollo Archive")
    status, answer = desk.http("provision", taken)
    assert status == 201, answer
    # main 1ef2909: the Jira route's record took the provision body, owners and reply address, and was sent.
    after = desk.record("jira", "HR-42")
    assert "mallory@contoso.com" not in after.body
    assert (after.status, after.body_hash, after.body, after.reply_to, after.etag) == (
        before.status,
        before.body_hash,
        before.body,
        before.reply_to,
        before.etag,
    )
    assert answer["ticket"] == {"source": "provision-jira", "id": "HR-42"}
    write_back(desk)
    # Only the Jira route's own outcome reached HR-42 (its refusal); nothing of the provision record did.
    assert [(issue, "Apollo Archive" in sent["body"]) for issue, sent, _ in desk.stack.jira.comments] == [
        ("HR-42", False)
    ]


def test_a_provision_call_cannot_write_to_any_jira_issue(desk):
    lured = provision_body("jira", "HR-1337", displayName=LURE[:100], templateId=10)  # Syskit Point refuses it
    status, answer = desk.http("provision", lured)
    assert (status, answer["status"]) == (422, "rejected"), answer
    write_back(desk)
    # main 1ef2909: the lure posted as an internal note on HR-1337 and "Provisioning failed" applied there.
    assert desk.stack.jira.calls == [] and desk.stack.jira.comments == [] and desk.stack.jira.applied == []


def test_the_drop_in_jira_rule_gets_its_outcome_only_when_provision_desk_writeback_names_jira(desk):
    body = fixture("syskit_jira_custom_body.json") | {"templateId": 10}  # Syskit's rule, refused by Point
    desk.configure(PROVISION_DESK_WRITEBACK="jira", JIRA_PROJECT_KEYS="MKT")
    status, answer = desk.http("provision", body)
    assert (status, answer["ticket"]) == (422, {"source": "provision-jira", "id": "MKT-7"}), answer
    write_back(desk)
    assert [issue for issue, _, _ in desk.stack.jira.comments] == ["MKT-7"]
    assert desk.stack.jira.applied == [("MKT-7", "41")]
    assert desk.status("provision-jira", "MKT-7")[1]["status"] == "rejected"
    assert "warnings" not in answer  # nothing to say: the outcome goes to the issue


def test_an_answer_says_when_a_desk_named_through_provision_will_not_hear_its_outcome(desk):
    status, answer = desk.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 201 and answer["warnings"] == [
        "the outcome is not written to jira: PROVISION_DESK_WRITEBACK does not name jira"
    ], answer
    desk.configure(PROVISION_DESK_WRITEBACK="jira,servicenow", JIRA_PROJECT_KEYS="HR")
    status, answer = desk.http("provision", provision_body("jira", "MKT-8"))
    assert answer["warnings"] == ["the outcome is not written to jira: the issue's project is not in JIRA_PROJECT_KEYS"]
    status, answer = desk.http("provision", provision_body("servicenow", "RITM0010470", displayName="Other"))
    assert answer["warnings"] == [
        "the outcome is not written to servicenow: ticket.sysId (the item's sys_id) is not given"
    ], answer
    status, answer = desk.http("provision", provision_body("acme", "T-9", displayName="Third"))
    assert "warnings" not in answer, answer  # the caller's own tool: its callback, if any, is its channel


def test_jira_project_keys_limits_every_jira_write_from_every_route(desk):
    desk.configure(PROVISION_DESK_WRITEBACK="jira,servicenow", JIRA_PROJECT_KEYS="IT, MKT")
    status, answer = desk.http("provision", provision_body("jira", "HR-1337", templateId=10))
    assert status == 422, answer
    desk.stack.point.templates = [t for t in desk.stack.point.templates if t["workspaceType"] != "teams"]
    status, answer = desk.http("jira", fixture("jira_webhook_approved.json"))  # HR-42, signed by Jira itself
    assert status == 422, answer
    write_back(desk)
    assert desk.stack.jira.comments == [] and desk.stack.jira.applied == []
    # The client refuses too, whoever calls it.
    client = desk.runtime.jira
    with pytest.raises(JiraError) as refused:
        client.comment("HR-42", "text", True, "pdb-0")
    assert refused.value.transient is False and "JIRA_PROJECT_KEYS" in str(refused.value)
    assert [c for c in desk.stack.jira.calls if c.method == "POST"] == []


@pytest.mark.parametrize("value", ["jira;servicenow", "jira,email", "JIRA , ,x", ","])
def test_a_malformed_provision_desk_writeback_is_a_503_naming_it_and_records_nothing(desk, value):
    desk.configure(PROVISION_DESK_WRITEBACK=value)
    status, answer = desk.http("provision", provision_body("jira", "HR-42"))
    assert status == 503 and [e["field"] for e in answer["errors"]] == ["PROVISION_DESK_WRITEBACK"], answer
    assert value not in json.dumps(answer) or value == ","
    assert desk.record("provision-jira", "HR-42") is None and desk.stack.point.provision_calls() == []


def test_a_record_written_through_provision_by_main_is_still_found_and_never_written_to_jira_by_default(desk):
    # As main 1ef2909 stored Syskit's Jira rule: partition "jira", no issue key noted (the Jira route always
    # notes one), its outcome owed to MKT-7.
    old = LedgerRecord(
        source="jira",
        ticket="MKT-7",
        status="rejected",
        display_name="Marketing Campaign Q3",
        workspace_type="teams",
        name_key="marketing campaign q3",
        body="{}",
    )
    assert desk.runtime.ledger.insert(old)
    status, shown = desk.status("jira", "MKT-7")
    assert (status, shown["status"], shown["ticket"]) == (200, "rejected", {"source": "jira", "id": "MKT-7"})
    assert desk_targets(desk.runtime.settings, desk.record("jira", "MKT-7")) == []  # read as a provision record
    desk.configure(PROVISION_DESK_WRITEBACK="jira")
    assert desk_targets(desk.runtime.settings, desk.record("jira", "MKT-7")) == ["jira"]
    # And a record of the Jira route (it notes the issue key) is written as before, the setting aside.
    jira_route = LedgerRecord(source="jira", ticket="HR-42", status="rejected", reply_to={"issueKey": "HR-42"})
    desk.configure(PROVISION_DESK_WRITEBACK=None)
    assert desk_targets(desk.runtime.settings, jira_route) == ["jira"]


# == 5. desk identifiers: validated at intake, percent-encoded on the way out =============================

ODD_KEYS = ["..", "HR-1/../x", "HR-1%2F..%2Fx", "HR-1;x=1", "hr-1", "HR-", "H-1"]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_an_odd_jira_key_is_a_400_naming_it_and_jira_never_sees_it(desk, key):
    payload = fixture("jira_webhook_approved.json")
    payload["issue"]["key"] = key
    status, answer = desk.http("jira", payload)
    assert status == 400 and [e["field"] for e in answer["errors"]] == ["issue.key"], answer
    desk.configure(PROVISION_DESK_WRITEBACK="jira")
    status, answer = desk.http("provision", provision_body("jira", key))
    assert status == 400 and "ticket.id" in [e["field"] for e in answer["errors"]], answer
    write_back(desk)
    assert desk.stack.jira.calls == [] and desk.stack.point.provision_calls() == []


@pytest.mark.parametrize(
    ("ticket", "field"),
    [
        ({"source": "servicenow", "id": "RITM0010452/../x"}, "ticket.id"),
        ({"source": "servicenow", "id": "ritm0010452"}, "ticket.id"),
        ({"source": "servicenow", "id": "RITM0010452", "sysId": "../8f1c2b7e4f3a1210a1b2c3d4e5f607"}, "ticket.sysId"),
        ({"source": "servicenow", "id": "RITM0010452", "sysId": "8F1C2B7E4F3A1210A1B2C3D4E5F60718"}, "ticket.sysId"),
        ({"source": "jira", "id": "HR-42", "sysId": "8f1c2b7e4f3a1210a1b2c3d4e5f60718"}, "ticket.sysId"),
    ],
)
def test_odd_servicenow_identifiers_are_a_400_naming_the_field(desk, ticket, field):
    body = fixture("syskit_jira_custom_body.json") | {"ticket": ticket}
    status, answer = desk.http("provision", body)
    assert status == 400 and field in [e["field"] for e in answer["errors"]], answer
    sn = fixture("servicenow_ritm.json") | {"number": "RITM0010452;x"}
    status, answer = desk.http("servicenow", sn)
    assert status == 400 and [e["field"] for e in answer["errors"]] == ["number"], answer
    assert desk.stack.point.provision_calls() == [] and desk.stack.servicenow.calls == []


@pytest.mark.parametrize("key", ["HR-1/../x", "HR-1%2F..%2Fx", "HR-1;x=1", "HR-1?x=1#y"])
def test_the_jira_client_sends_any_key_as_one_encoded_path_segment(bridge, key):
    """Intake never lets such a key through; should one reach the client anyway, it stays one segment."""
    jira = bridge.stack.jira
    client = JiraClient(jira.url, jira.email, jira.api_token)
    client.comment(key, "text", False, "pdb-1")
    assert client.has_comment(key, "pdb-1") is True  # found under the same, single segment
    assert client.transition(key, "Done", "pdb-2") is True
    assert client.has_transitioned(key, "pdb-2") is True
    encoded = quote(key, safe="")
    assert "/" not in encoded and ";" not in encoded and "?" not in encoded and "#" not in encoded
    # /rest/api/{v}/issue/{key}/...: the key is the fifth segment of every path Jira received, and only it.
    assert {c.path.split("/")[5] for c in jira.calls} == {encoded}
    assert {c.path.split("/")[4] for c in jira.calls} == {"issue"}
    assert [issue for issue, _, _ in jira.comments] == [encoded] and jira.applied == [(encoded, "31")]


@pytest.mark.parametrize("key", ["..", ".", ""])
def test_the_jira_client_never_sends_a_dot_segment(bridge, key):
    jira = bridge.stack.jira
    client = JiraClient(jira.url, jira.email, jira.api_token)
    for call in (
        lambda: client.comment(key, "text", True, "pdb-1"),
        lambda: client.has_comment(key, "pdb-1"),
        lambda: client.transition(key, "Done", "pdb-1"),
        lambda: client.has_transitioned(key, "pdb-1"),
    ):
        with pytest.raises(JiraError) as refused:
            call()
        assert refused.value.transient is False
    assert jira.calls == []


# == 4. a list setting that names nothing =================================================================


@pytest.mark.parametrize("value", [",", " , ", ",,"])
def test_a_jira_webhook_secret_setting_that_names_nothing_is_a_503_not_an_unsigned_pass(desk, value):
    desk.configure(JIRA_WEBHOOK_SECRET_NAME=value)
    status, answer = desk.http("jira", fixture("jira_webhook_approved.json"))  # unsigned
    # main 1ef2909: 201, the unsigned body accepted as if no secret were configured.
    assert status == 503, answer
    assert [(e["field"], e["message"]) for e in answer["errors"]] == [
        ("JIRA_WEBHOOK_SECRET_NAME", "setting is set but names nothing (only commas or spaces)")
    ]
    assert desk.stack.point.provision_calls() == [] and desk.record("jira", "HR-42") is None


def test_doctor_names_every_list_setting_that_names_nothing(bridge):
    from deskbridge import doctor

    names = [
        "JIRA_WEBHOOK_SECRET_NAME",
        "SERVICENOW_SIGNING_SECRET_NAME",
        "PROVISION_SIGNING_SECRET_NAME",
        "POINT_WEBHOOK_KEY_SECRET_NAME",
        "POINT_TEMPLATE_IDS",
        "POINT_DEFAULT_TEMPLATE_ID",
        "BRIDGE_RETRY_SCHEDULE",
        "PROVISION_DESK_WRITEBACK",
        "JIRA_PROJECT_KEYS",
    ]
    bridge.configure(**dict.fromkeys(names, " , "))
    [settings] = [o for o in doctor.run_checks(bridge.runtime) if o.name == "settings"]
    assert settings.state == "fail"
    for name in names:
        assert f"{name} is set but names nothing" in settings.message, name


# == 7. answers name what failed, not where =================================================================


def test_a_503_for_a_secret_key_vault_cannot_give_names_no_secret(desk, caplog):
    desk.configure(JIRA_WEBHOOK_SECRET_NAME="jira-hook-secret-prod-7")  # not in the vault
    status, answer = desk.http("jira", fixture("jira_webhook_approved.json"), headers={"X-Hub-Signature": "x"})
    assert status == 503, answer
    assert [e["field"] for e in answer["errors"]] == ["keyVault"]
    assert "jira-hook-secret-prod-7" not in json.dumps(answer)  # main 1ef2909: "Key Vault secret 'jira-hook-...'"
    assert "not found in the vault" in answer["errors"][0]["message"]
    assert "jira-hook-secret-prod-7" in caplog.text  # the log keeps the detail


def test_the_status_route_shows_no_secret_name_when_the_point_token_cannot_be_had(bridge, caplog):
    bridge.configure(POINT_CLIENT_SECRET_NAME="point-secret-that-is-not-there")
    status, answer = bridge.http("provision", provision_body("acme", "T-1"))
    assert answer["status"] in ("queued", "failed"), answer
    status, shown = bridge.status("acme", "T-1")
    assert status == 200 and "Key Vault" in shown["lastError"], shown
    assert "point-secret-that-is-not-there" not in json.dumps(shown) + json.dumps(answer)
    assert "point-secret-that-is-not-there" in caplog.text


@pytest.mark.parametrize(
    "sys_id", ["../8f1c2b7e4f3a1210a1b2c3d4e5f607", "8f1c2b7e4f3a1210a1b2c3d4e5f60718^ORactive=true", ""]
)
def test_the_servicenow_client_never_sends_a_sys_id_of_another_form(bridge, sys_id):
    from deskbridge.desks.servicenow_client import ServiceNowClient
    from deskbridge.errors import ServiceNowError

    servicenow = bridge.stack.servicenow
    client = ServiceNowClient(servicenow.url, username=servicenow.username, password=servicenow.password)
    for call in (lambda: client.update_item(sys_id, {"work_notes": "x"}), lambda: client.has_work_note(sys_id, "m")):
        with pytest.raises(ServiceNowError) as refused:
            call()
        assert refused.value.transient is False
    assert servicenow.calls == []


def test_a_provision_servicenow_ticket_is_written_back_only_when_provision_desk_writeback_names_servicenow(desk):
    sys_id = "8f1c2b7e4f3a1210a1b2c3d4e5f60718"
    body = fixture("syskit_servicenow_body.json") | {"templateId": 10}  # refused by Syskit Point
    body["ticket"] = {"source": "servicenow", "id": "RITM0010460", "sysId": sys_id}
    status, answer = desk.http("provision", body)
    assert (status, answer["ticket"]) == (422, {"source": "provision-servicenow", "id": "RITM0010460"}), answer
    write_back(desk)
    assert desk.stack.servicenow.calls == []  # off by default
    desk.configure(PROVISION_DESK_WRITEBACK="servicenow")
    body["ticket"]["id"] = "RITM0010461"
    assert desk.http("provision", body)[0] == 422
    write_back(desk)
    assert [patched for patched, _ in desk.stack.servicenow.patches] == [sys_id]
    assert desk.stack.jira.calls == []
