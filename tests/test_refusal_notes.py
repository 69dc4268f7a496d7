"""An approval refused at intake is written to its ticket, once per distinct refusal, on the desk's own route.

Through the registered functions; the note is queued and written by the desk-update function (Azurite, the
Jira and ServiceNow stand-ins), so the 4xx answer never waits for the desk.
"""

from __future__ import annotations

import json

from conftest import fixture, functions
from crash_harness import queue_client, run_due

from devtools.stack import SAMPLE_JIRA_FIELDS

HARRY = "557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10"


def jira_notes(bridge) -> list[tuple[str, str]]:
    return [(key, body["body"]) for key, body, _ in bridge.stack.jira.comments]


def test_a_refused_jira_approval_gets_one_note_naming_every_problem(bridge):
    bridge.configure(**SAMPLE_JIRA_FIELDS)
    bridge.stack.jira.add_user(HARRY, "Hidden Harry")  # no visible e-mail
    payload = fixture("jira_webhook_approved.json")
    issue = payload["issue"]["key"]
    payload["issue"]["fields"]["customfield_10054"] = ""  # and no workspace name
    status, body = bridge.http("jira", payload)
    assert status == 400, body
    assert {e["field"] for e in body["errors"]} == {"owners", "displayName"}, body
    assert bridge.stack.jira.calls_to("POST", "/rest") == []  # the answer did not wait for the desk
    run_due(bridge)
    [(noted, note)] = jira_notes(bridge)
    assert noted == issue
    assert note.startswith("Point Desk Bridge could not send this approval to Syskit Point:")
    for error in body["errors"]:
        assert f"- {error['field']}: {error['message']}" in note
    assert "Correct the ticket, then approve it again." in note
    # The same refusal again (the agent approves again without changing anything): no second note.
    assert bridge.http("jira", payload)[0] == 400
    run_due(bridge)
    assert len(jira_notes(bridge)) == 1
    # Another refusal of the same ticket (the owner's e-mail made visible, still no name): its own note.
    bridge.stack.jira.add_user(HARRY, "Hidden Harry", "harry@contoso.com")
    status, body = bridge.http("jira", payload)
    assert status == 400 and [e["field"] for e in body["errors"]] == ["displayName"]
    run_due(bridge)
    assert len(jira_notes(bridge)) == 2 and "owners" not in jira_notes(bridge)[1][1]
    # Corrected: it goes through as today, and no refusal note follows.
    payload["issue"]["fields"]["customfield_10054"] = "Project Apollo"
    assert bridge.http("jira", payload)[0] == 201
    run_due(bridge)
    assert len(jira_notes(bridge)) == 2 and len(bridge.stack.point.provision_calls()) == 1
    assert bridge.record("jira", issue).status == "submitted"


def test_a_refused_servicenow_approval_gets_a_work_note(bridge):
    payload = fixture("servicenow_ritm.json") | {"unresolved": ["0a826bf03710200044e0bfc8bcbe5d7a"]}
    assert bridge.http("servicenow", payload)[0] == 422
    run_due(bridge)
    [(sys_id, fields)] = bridge.stack.servicenow.patches
    assert sys_id == payload["sys_id"]
    assert "0a826bf03710200044e0bfc8bcbe5d7a" in fields["work_notes"] and "state" not in fields


def test_no_note_from_provision_nor_without_write_back_nor_for_a_bad_signature(bridge):
    body = fixture("syskit_jira_custom_body.json") | {"owners": []}  # names a Jira issue: never written from here
    assert bridge.http("provision", body)[0] == 400
    bridge.configure(**SAMPLE_JIRA_FIELDS, JIRA_URL=None)  # no Jira write-back configured
    assert bridge.http("jira", fixture("jira_webhook_approved.json"))[0] == 422
    run_due(bridge)
    assert bridge.stack.jira.comments == [] and bridge.queue_count(bridge.settings["BRIDGE_DESK_QUEUE"]) == 0


def test_a_lost_note_message_is_queued_again_by_the_reconciler_and_written_once(bridge):
    bridge.configure(**SAMPLE_JIRA_FIELDS)
    bridge.stack.jira.add_user(HARRY, "Hidden Harry")
    assert bridge.http("jira", fixture("jira_webhook_approved.json"))[0] == 422
    queue_client(bridge, "BRIDGE_DESK_QUEUE").clear_messages()  # the message is lost
    bridge.clock.advance(bridge.runtime.settings.queue_grace + 1)
    functions()["reconcile"].get_user_function()(None)
    [message] = [json.loads(m) for m in bridge.messages("BRIDGE_DESK_QUEUE")]
    assert message["check"] is True and message["update"].startswith("refused:")
    run_due(bridge)
    bridge.clock.advance(bridge.runtime.settings.queue_grace + 1)
    functions()["reconcile"].get_user_function()(None)
    run_due(bridge)
    assert len(jira_notes(bridge)) == 1
