"""Upgrades lose nothing: what an earlier release left in storage is settled by this one.

tests/fixtures/releases/<version>/ holds what that release's own code wrote (devtools/capture_shapes.py ran
it against Azurite; CAPTURED.md says how and when): ledger records in every status, retry and desk-update
messages (current ones, superseded ones, the reconciler's check=true re-sends, a retry poison message and a
desk poison message), delivery ids. Here they are put back into Azurite as they were stored, and this release
takes over as a new deployment would: the reconciler's timer and the queue functions, through the registered
functions. Every message is handled without an exception (none would be poisoned), every record ends where
its story leads, and the operator routes read and replay them.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, functions
from crash_harness import queue_client, run_due

from deskbridge.ledger import RECORD_SHAPE
from deskbridge.retries import QueueKey
from devtools.capture_shapes import OPEN_STATES

RELEASES = sorted(p.name for p in (FIXTURES / "releases").iterdir() if p.is_dir())
QUEUES = ("BRIDGE_RETRY_QUEUE", "BRIDGE_RETRY_POISON_QUEUE", "BRIDGE_DESK_QUEUE", "BRIDGE_DESK_POISON_QUEUE")

# Where each record's story leads once this release has run the reconciler and every message.
SETTLED = {
    ("jira", "HR-101"): "submitted",  # Syskit Point, asked by request id, says still running
    ("jira", "HR-102"): "provisioning",  # its provisioning note written
    ("jira", "HR-103"): "completed",  # both notes written, each once
    ("jira", "HR-104"): "point_failed",
    ("jira", "HR-105"): "rejected",
    ("jira", "HR-106"): "uncertain",  # an operator's question: left for the operator
    ("jira", "HR-107"): "submitted",  # its retry message came due and the attempt went through
    ("jira", "HR-108"): "failed",
    ("jira", "HR-109"): "uncertain",  # its worker died while calling Syskit Point: the reconciler says so
    ("portal", "FAC-9001"): "completed",  # its callback delivered
    ("servicenow", "RITM0090001"): "completed",  # its work note written
}


def stored(release: str, name: str) -> Any:
    return json.loads((FIXTURES / "releases" / release / name).read_text())


def put_back(bridge, release: str) -> dict[str, list[str]]:
    """The release's records, delivery ids and messages into this test's tables and queues, as stored. The
    one thing rewritten is the callback receiver's address, which is this machine's stand-in's, not the
    capture's; and Syskit Point's stand-in is told the requests the release sent, as still running."""
    from azure.data.tables import TableClient

    connection = bridge.settings["AzureWebJobsStorage"]
    ledger = TableClient.from_connection_string(connection, bridge.settings["BRIDGE_LEDGER_TABLE"])
    for entity in stored(release, "records.json"):
        if "ReplyTo" in entity and "callbackUrl" in entity["ReplyTo"]:
            reply_to = json.loads(entity["ReplyTo"])
            reply_to["callbackUrl"] = re.sub(r"^https://[^/]+", bridge.stack.callbacks.url, reply_to["callbackUrl"])
            entity["ReplyTo"] = json.dumps(reply_to)
        if entity.get("PointRequestId"):  # Syskit Point knows the requests the release sent: still running
            bridge.stack.point.status_answers[entity["PointRequestId"]] = {"status": "InProgress"}
        ledger.create_entity(entity)
    deliveries = TableClient.from_connection_string(connection, bridge.settings["BRIDGE_DELIVERIES_TABLE"])
    for entity in stored(release, "deliveries.json"):
        deliveries.create_entity(entity)
    messages = stored(release, "messages.json")
    for setting in QUEUES:
        for text in messages[setting]:
            queue_client(bridge, setting).send_message(text)
    return messages


def settle_strictly(bridge, caplog) -> int:
    """Run every message due, as the host would; a function that raises fails the test (the host would retry
    it, then poison it)."""
    return run_due(bridge, rounds=60, strict=True)


@pytest.mark.parametrize("release", RELEASES)
def test_the_fixtures_cover_every_shape_and_name_their_capture(release):
    records = stored(release, "records.json")
    assert {r["Status"] for r in records} == set(OPEN_STATES)  # every status the capture makes
    assert "devtools/capture_shapes.py" in (FIXTURES / "releases" / release / "CAPTURED.md").read_text()
    messages = stored(release, "messages.json")
    assert all(messages[setting] for setting in QUEUES)
    assert any(json.loads(m).get("check") for m in messages["BRIDGE_DESK_QUEUE"])
    assert stored(release, "deliveries.json")


@pytest.mark.parametrize("release", RELEASES)
def test_this_release_settles_what_an_earlier_one_left(bridge, release, caplog):
    caplog.set_level(logging.INFO, logger="deskbridge")
    # The release's Jira records came through /api/provision (Syskit's rule), which now writes to Jira only when
    # PROVISION_DESK_WRITEBACK says so: the upgrade note tells such a deployment to set it, as here.
    bridge.configure(PROVISION_DESK_WRITEBACK="jira")
    messages = put_back(bridge, release)
    older = [QueueKey.decode(text) for texts in messages.values() for text in texts]
    assert {key.shape for key in older} <= set(range(1, RECORD_SHAPE + 1))
    for (source, ticket), _ in SETTLED.items():  # each record reads, in the shape it was written in
        record = bridge.record(source, ticket)
        assert record is not None and record.shape <= RECORD_SHAPE and record.unknown == {}
        assert bridge.status(source, ticket)[0] in (200, 202, 422, 503)
    # A new deployment: the reconciler's timer once its thresholds have passed, then every message as it comes.
    bridge.clock.advance(max(bridge.runtime.settings.pending_stale, bridge.runtime.settings.queue_grace) + 60)
    functions()["reconcile"].get_user_function()(None)
    handled = settle_strictly(bridge, caplog)
    assert handled >= sum(len(texts) for texts in messages.values())
    assert {setting: bridge.queue_count(bridge.settings[setting]) for setting in QUEUES} == dict.fromkeys(QUEUES, 0)
    assert {key: bridge.record(*key).status for key in SETTLED} == SETTLED
    assert {key: bridge.record(*key).desk_owed for key in SETTLED} == dict.fromkeys(SETTLED, {})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "malformed" in r.getMessage()]
    # every outcome reached its ticket once: Jira notes per update, the ServiceNow note, the callback
    # (HR-103's provisioning note was superseded by its completion before it went out: one note, the outcome)
    notes = sorted(issue for issue, _, _ in bridge.stack.jira.comments)
    assert notes == ["HR-102", "HR-103", "HR-104", "HR-105", "HR-108"]
    assert bridge.record("jira", "HR-103").desk_updates == ["provisioning:superseded", "completed:jira-comment"]
    assert len(bridge.stack.servicenow.journal) == 1 and len(bridge.stack.callbacks.received) == 1
    # what this release wrote moved forward to its shape; what it had no reason to touch was left as it was
    assert bridge.record("jira", "HR-107").shape == RECORD_SHAPE
    assert bridge.record("jira", "HR-101").shape == RECORD_SHAPE  # asked about by request id: written anew
    assert bridge.record("jira", "HR-106").shape == 1  # nothing to do for it: left as the release wrote it
    # the operator routes read and replay them
    status, shown = bridge.http("admin_show", method="GET", route_params={"source": "jira", "ticket": "HR-106"})
    assert status == 200 and shown["shape"] == 1 and shown["history"]
    status, replayed = bridge.http("admin_replay", route_params={"source": "jira", "ticket": "HR-108"})
    assert status == 200 and replayed["request"]["status"] == "queued"
    settle_strictly(bridge, caplog)
    assert bridge.record("jira", "HR-108").status == "submitted"


@pytest.mark.parametrize("release", RELEASES)
def test_an_earlier_releases_delivery_ids_are_read_and_pruned(bridge, release, caplog):
    caplog.set_level(logging.INFO, logger="deskbridge")
    put_back(bridge, release)
    rows = stored(release, "deliveries.json")
    for row in rows:
        assert bridge.runtime.deliveries.fingerprint(row["PartitionKey"], row["RowKey"]) == row["Fingerprint"]
    bridge.clock.advance(bridge.runtime.settings.delivery_retention + 3600)
    caplog.clear()
    functions()["reconcile"].get_user_function()(None)
    [line] = [r for r in caplog.records if getattr(r, "bridge_event", "") == "reconcile"]
    assert line.pruned == len(rows) and line.errors == 0


def test_a_record_from_a_newer_release_keeps_what_this_one_does_not_know(bridge):
    """A rollback: properties a newer release wrote are written back untouched, and its shape is kept."""
    from azure.data.tables import TableClient

    entity = next(e for e in stored(RELEASES[-1], "records.json") if e["RowKey"] == "HR-106")
    entity |= {"Shape": RECORD_SHAPE + 1, "SomethingNewer": "kept as it was"}
    TableClient.from_connection_string(
        bridge.settings["AzureWebJobsStorage"], bridge.settings["BRIDGE_LEDGER_TABLE"]
    ).create_entity(entity)
    status, _ = bridge.http("admin_replay", route_params={"source": "jira", "ticket": "HR-106"})
    assert status == 200
    record = bridge.record("jira", "HR-106")
    assert record.status == "queued" and record.unknown == {"SomethingNewer": "kept as it was"}
    assert record.shape == RECORD_SHAPE + 1


def test_release_fixture_folders_are_versions():
    assert RELEASES and all(re.fullmatch(r"\d+\.\d+\.\d+", name) for name in RELEASES)
    assert Path(FIXTURES / "releases").is_dir()
