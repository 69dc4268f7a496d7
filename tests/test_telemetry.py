"""The structured lines the workbook and the alerts read, read the way they read them.

The lines come from the bridge's real code paths with logging captured, and
are formatted as the Functions Python worker formats a record before it
ships it (``logging.Handler.format``: the message, then any traceback on
the following lines). The alert rules' and the workbook's queries then run
over them as Log Analytics would (tests/kql_subset.py).
"""

import base64
import json
import logging
import re
from pathlib import Path

import azure.functions as func
import pytest
from conftest import fixture, functions
from kql_subset import run

import deskbridge
from deskbridge.retries import QueueKey

ROOT = Path(__file__).resolve().parent.parent
OBSERVABILITY = ROOT / "infra" / "app" / "observability.bicep"
WORKBOOK = ROOT / "infra" / "app" / "workbook.json"


def workbook_queries() -> dict[str, str]:
    workbook = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    return {item["name"]: item["content"]["query"] for item in workbook["items"] if "query" in item["content"]}


def alert_queries() -> dict[str, str]:
    """The KQL variables of observability.bicep (multi-line verbatim strings)."""
    text = OBSERVABILITY.read_text(encoding="utf-8")
    return {name: query.strip() for name, query in re.findall(r"var (\w+Query) = '''\n(.*?)'''", text, re.S)}


def kql_patterns() -> set[str]:
    """The regular expression every workbook query and the alerts use on `message`."""
    found = set()
    for query in [*workbook_queries().values(), *alert_queries().values()]:
        found.update(re.findall(r"extract\(@'([^']*)', 1, message\)", query))
    return found


def dimensions(message: str, pattern: str) -> dict:
    match = re.search(pattern, message)
    assert match, message
    return json.loads(match.group(1))


def traces(caplog) -> list[dict]:
    """The captured records as rows of Application Insights' `traces` table."""
    worker = logging.Handler()  # formats as the worker's AsyncLoggingHandler does
    return [
        {"timestamp": record.created, "message": worker.format(record), "operation_Id": f"op-{index}"}
        for index, record in enumerate(caplog.records)
    ]


def test_every_query_uses_the_same_pattern():
    assert len(alert_queries()) == 2
    assert len(kql_patterns()) == 1


def test_approval_and_point_call_lines_parse_as_the_workbook_expects(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    bridge.stack.point.fail_next(1, 500, method="POST")
    bridge.http("provision", fixture("syskit_jira_custom_body.json") | {"displayName": "Braces {x} \"quoted\""})
    [pattern] = kql_patterns()
    lines = [dimensions(r.getMessage(), pattern) for r in caplog.records if getattr(r, "bridge_event", "")]
    approval = next(d for d in lines if d["bridge_event"] == "approval")
    # A 500 may come after Syskit Point acted: uncertain (202), not re-sent.
    assert (approval["source"], approval["ticket"], approval["outcome"]) == ("provision-jira", "MKT-7", "uncertain")
    assert approval["http_status"] == 202 and approval["duration_ms"] > 0
    call = next(d for d in lines if d["bridge_event"] == "point_call")
    assert call["point_status"] == 500 and "duration_ms" in call
    assert all("olga.owner@contoso.com" not in r.getMessage() for r in caplog.records)


def _status_with_storage_refusing_the_key(bridge):
    """The status route when Azure Storage refuses the account key: a 503 naming storage, logged as a problem."""
    wrong_key = base64.b64encode(b"not the account key").decode()
    connection = re.sub(r"AccountKey=[^;]+", f"AccountKey={wrong_key}", bridge.settings["AzureWebJobsStorage"])
    bridge.configure(AzureWebJobsStorage=connection)
    status, body = bridge.status("provision-jira", "MKT-7")
    assert status == 503 and [e["field"] for e in body["errors"]] == ["storage"], body


def _status_of_a_record_edited_by_hand(bridge):
    """An unhandled exception on a real path: someone edited a ledger record in Storage Explorer and typed
    a word where the attempt count belongs; the status route cannot read it back."""
    from azure.data.tables import TableClient, UpdateMode

    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 201, body
    source, ticket = body["ticket"]["source"], body["ticket"]["id"]
    table = TableClient.from_connection_string(
        bridge.settings["AzureWebJobsStorage"], table_name=bridge.settings["BRIDGE_LEDGER_TABLE"]
    )
    table.update_entity({"PartitionKey": source, "RowKey": ticket, "Attempts": "several"}, mode=UpdateMode.MERGE)
    status, body = bridge.status(source, ticket)
    assert status == 500 and body["status"] == "failed"
    assert "several" not in json.dumps(body)  # the exception's text stays in the log


def test_a_line_with_a_traceback_after_its_dimensions_still_parses(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    _status_of_a_record_edited_by_hand(bridge)
    [row] = [row for row in traces(caplog) if '"bridge_event":"error"' in row["message"]]
    first_line, _, rest = row["message"].partition("\n")
    assert rest.startswith("Traceback (most recent call last):")
    assert first_line.endswith(f'{{"bridge_event":"error","version":"{deskbridge.__version__}"}}')
    [pattern] = kql_patterns()
    assert dimensions(row["message"], pattern) == {"bridge_event": "error", "version": deskbridge.__version__}
    assert re.search(r'(\{"bridge_event".*\})\s*$', row["message"]) is None  # what the old pattern missed


def test_the_problems_alert_fires_on_authorization_configuration_and_unhandled_errors(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    # an exception nothing handles
    _status_of_a_record_edited_by_hand(bridge)
    # Syskit Point refuses the bridge's token
    bridge.stack.point.fail_next(10, 401, method="POST")
    another = fixture("syskit_jira_custom_body.json") | {"comment": "Generated by JIRA Issue MKT-8"}
    status, _ = bridge.http("provision", another)
    assert status == 202
    # a setting the bridge needs is malformed
    bridge.configure(POINT_RETRY_BUDGET_SECONDS="soon")
    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json") | {"externalId": "MKT-8"})
    assert status == 503, body
    # Azure Storage refuses the bridge's key
    _status_with_storage_refusing_the_key(bridge)

    rows = run(alert_queries()["problemsQuery"], {"traces": traces(caplog)})
    by_event = {row["event"]: row for row in rows}
    assert set(by_event) == {"authorization", "config", "error", "storage"}, rows
    assert by_event["authorization"]["point_status"] == "401"
    assert by_event["config"]["setting"] == "POINT_RETRY_BUDGET_SECONDS"
    assert "Traceback (most recent call last):" in by_event["error"]["message"]
    # the workbook's table is the same query, newest first
    table = run(workbook_queries()["problems"], {"traces": traces(caplog)})
    assert sorted(row["event"] for row in table) == sorted(by_event)
    assert table[0]["timestamp"] >= table[-1]["timestamp"]


def test_the_requests_alert_shows_a_request_that_ran_out_of_retries_once(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    bridge.stack.point.fail_next(100, 503, method="POST")
    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert body["status"] == "queued", body
    bridge.drain("BRIDGE_RETRY_QUEUE", "retry")  # the tests' schedule: two more attempts, a second apart
    assert bridge.record("provision-jira", "MKT-7").status == "failed"
    assert bridge.drain("BRIDGE_RETRY_POISON_QUEUE", "retry_poisoned") == 1
    logged = [getattr(r, "bridge_event", "") for r in caplog.records]
    assert {"failed", "poisoned"} <= set(logged)  # two lines for the one request...

    rows = run(alert_queries()["requestsQuery"], {"traces": traces(caplog)})
    [row] = [row for row in rows if row["ticket"] == "MKT-7"]  # ...one row
    assert row["source"] == "provision-jira" and {"failed", "poisoned"} <= set(row["events"])
    table = run(workbook_queries()["recent-failures"], {"traces": traces(caplog)})
    assert [(r["source"], r["ticket"]) for r in table] == [(r["source"], r["ticket"]) for r in rows]


def test_a_poisoned_desk_update_carries_its_source_and_ticket(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    body = QueueKey("servicenow", "RITM0010001", "completed").encode().encode("utf-8")
    functions()["desk_update_poisoned"].get_user_function()(func.QueueMessage(body=body))
    functions()["desk_update_poisoned"].get_user_function()(func.QueueMessage(body=b"not json"))
    [pattern] = kql_patterns()
    given_up = [row["message"] for row in traces(caplog) if "desk update given up" in row["message"]]
    poisoned = [dimensions(message, pattern) for message in given_up]
    assert poisoned[0] == {
        "bridge_event": "poisoned",
        "source": "servicenow",
        "ticket": "RITM0010001",
        "outcome": "desk_update_failed",
        "update": "completed",
        "version": deskbridge.__version__,
    }
    assert poisoned[1] == {"bridge_event": "poisoned", "outcome": "desk_update_failed",
                           "version": deskbridge.__version__}  # still logged
    rows = run(alert_queries()["requestsQuery"], {"traces": traces(caplog)})
    assert ("servicenow", "RITM0010001") in {(row["source"], row["ticket"]) for row in rows}


@pytest.mark.parametrize("name", ["requestsQuery", "problemsQuery"])
def test_the_workbook_tables_run_the_alert_queries(name):
    table = {"requestsQuery": "recent-failures", "problemsQuery": "problems"}[name]
    assert workbook_queries()[table] == alert_queries()[name] + "\n| top 50 by timestamp desc"


def test_an_overdue_request_is_one_row_of_the_problems_alert_and_its_table(bridge, caplog):
    """No word from Syskit Point for BRIDGE_OUTCOME_OVERDUE_SECONDS: one line, counted by the alert that says the
    bridge cannot do its work, and by the workbook's table of those problems."""
    caplog.set_level("INFO", logger="deskbridge")
    bridge.stack.point.send_events = False
    status, body = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 201, body
    record = bridge.record("provision-jira", "MKT-7")
    bridge.stack.point.status_answers[record.point_request_id] = {"status": "InProgress"}
    for _ in range(3):  # three sweeps past the limit: the request is overdue once
        bridge.clock.advance(bridge.runtime.settings.outcome_overdue)
        functions()["reconcile"].get_user_function()(None)
    [pattern] = kql_patterns()
    lines = [dimensions(row["message"], pattern) for row in traces(caplog)
             if '"bridge_event":"overdue"' in row["message"]]
    assert lines == [{"bridge_event": "overdue", "source": "provision-jira", "ticket": "MKT-7", "outcome": "overdue",
                     "version": deskbridge.__version__}]
    rows = run(alert_queries()["problemsQuery"], {"traces": traces(caplog)})
    [row] = [row for row in rows if row["event"] == "overdue"]
    assert row["occurrences"] == 1
    table = run(workbook_queries()["problems"], {"traces": traces(caplog)})
    assert [r["event"] for r in table] == ["overdue"]
