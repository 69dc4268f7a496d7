"""Outcomes by request id: asking Syskit Point when its webhooks say nothing.

Syskit Point's events are one way to hear a request's outcome; the other is
``GET /v1.0/provision/requests/{requestId}`` (permission
``Point.Provisioning``, no webhook needed). The reconciler asks for every
``submitted`` or ``provisioning`` request (and an ``uncertain`` one that has a
request id) that heard nothing for BRIDGE_OUTCOME_POLL_AFTER_SECONDS, then at
a growing interval, and applies what the answer says (deskbridge.point_status)
with the same transition and desk update an event would.

Each poll is one GET, then at most one ledger write, then the desk-update
message; a crash between any two leaves the record as the last write says,
and the next sweep asks again (a settled record owes its desk update, which
the reconciler queues again when its message was lost).

The events route asks too, when an event's workspace name and type match
several open requests: only the one Syskit Point confirms by its request id
is settled (:func:`confirmed`).

A request that heard nothing for BRIDGE_OUTCOME_OVERDUE_SECONDS after it was
sent is logged as ``overdue`` once and, when write-back is on, its ticket is
told once (:func:`note_overdue`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from deskbridge import point_status, telemetry
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import AWAITING_OUTCOME, LedgerRecord, iso, parse_iso
from deskbridge.lifecycle import Event
from deskbridge.model import Status
from deskbridge.point_status import Reading
from deskbridge.runtime import Runtime

log = telemetry.logger("deskbridge.outcomes")

_CAP = 21600  # the longest interval between two polls of one request (6 hours), unless the first is longer
_SETTLING = {
    point_status.COMPLETED: Event.POLLED_COMPLETED,
    point_status.FAILED: Event.POLLED_FAILED,
    point_status.REFUSED: Event.POLLED_REFUSED,
}
OVERDUE_STATUSES = (Status.SUBMITTED, Status.PROVISIONING)  # Syskit Point took them and said nothing since


def interval(poll_after: int, polls: int) -> int:
    """Seconds from the last word (an event, a poll, the submission) to the next poll: the setting, then doubling
    with each answer that said "still running", up to 6 hours (or the setting, when it is longer)."""
    return min(poll_after * 2 ** min(polls, 20), max(poll_after, _CAP))


def _latest(*texts: str) -> datetime | None:
    moments = [m for m in (parse_iso(t) for t in texts if t) if m is not None]
    return max(moments) if moments else None


def poll_due(runtime: Runtime, record: LedgerRecord, now: datetime) -> bool:
    """Whether Syskit Point should be asked about this record now."""
    if not record.point_request_id or record.status not in AWAITING_OUTCOME:
        return False
    last_word = _latest(record.event_at, record.polled_at, record.submitted_at, record.created_at)
    wait = interval(runtime.settings.outcome_poll_after, record.polls)
    return last_word is None or now >= last_word + timedelta(seconds=wait)


def ask(runtime: Runtime, record: LedgerRecord) -> Reading | None:
    """Syskit Point's answer about the record's request id, read; None when it could not be had (logged)."""
    from deskbridge.errors import RemoteError

    try:
        answer = runtime.point.request_status(record.point_request_id)
    except RemoteError as exc:
        status = getattr(exc, "http_status", None)
        log.warning(
            "could not ask Syskit Point about %s/%s by its request id: %s",
            record.source,
            record.ticket,
            exc,
            extra={
                "bridge_event": "poll",
                "source": record.source,
                "ticket": record.ticket,
                "outcome": "error",
                "point_status": status or "",
            },
        )
        return None
    return point_status.read(answer)


def _reason(reading: Reading) -> str:
    if reading.reason:
        return reading.reason
    if reading.outcome == point_status.FAILED:
        return f"Syskit Point reported a failure (status {reading.status})"
    return f"Syskit Point did not provision it (status {reading.status})"


def apply_reading(runtime: Runtime, record: LedgerRecord, reading: Reading) -> str:
    """What one answer means for the record, written (one ledger write, then the desk update). Returns
    the outcome for the counts: completed, point_failed, rejected, found (uncertain -> submitted), running,
    unreadable, or "" when the record changed meanwhile and the answer no longer applies."""
    source, ticket = record.source, record.ticket
    now = iso(runtime.clock.now())
    asked = {"polled_at": now, "polls": record.polls + 1}
    if not reading.readable:
        keys = ",".join(reading.keys)[:500]

        def unread(latest: LedgerRecord) -> LedgerRecord | None:
            if latest.status not in AWAITING_OUTCOME:
                return None
            latest.polled_at, latest.polls = now, latest.polls + 1
            latest.poll_unreadable = keys
            return latest

        if record.poll_unreadable != keys:  # once per request (per shape of answer): the keys, never the values
            log.warning(
                "Syskit Point's status answer for %s/%s could not be read (keys: %s); the request stays %s",
                source,
                ticket,
                keys or "(none)",
                record.status,
                extra={"bridge_event": "poll", "source": source, "ticket": ticket, "outcome": "unreadable"},
            )
        runtime.ledger.change(source, ticket, unread)
        return "unreadable"
    event = _SETTLING.get(reading.outcome)
    if event is None and record.status == Status.UNCERTAIN:
        event = Event.POLLED_RUNNING  # it reached Syskit Point after all
    if event is None:  # still running: only the interval grows

        def waited(latest: LedgerRecord) -> LedgerRecord | None:
            if latest.status not in AWAITING_OUTCOME:
                return None
            latest.polled_at, latest.polls = now, latest.polls + 1
            return latest

        runtime.ledger.change(source, ticket, waited)
        return "running"
    fields: dict[str, Any] = dict(asked)
    error = ""  # completed, or found running: an uncertain request's reason no longer holds
    if event == Event.POLLED_COMPLETED:
        fields["url"] = reading.url or record.url
    elif event in (Event.POLLED_FAILED, Event.POLLED_REFUSED):
        error = _reason(reading)
    wanted = record.point_request_id

    def same_request(latest: LedgerRecord) -> bool:  # a replay since the answer would make it another request
        return latest.point_request_id == wanted

    moved = in_ledger(runtime, source, ticket, Change(event, error=error, fields=fields), same_request)
    if moved is None or not moved.applied:
        return ""
    outcome = "found" if event == Event.POLLED_RUNNING else str(moved.record.status)
    log.info(
        "%s/%s is %s: Syskit Point's status answer by its request id says %s",
        source,
        ticket,
        moved.record.status,
        reading.status,
        extra={"bridge_event": "poll", "source": source, "ticket": ticket, "outcome": outcome},
    )
    return outcome


def poll(runtime: Runtime, record: LedgerRecord) -> str:
    """Ask about one record (due or not: the caller decides) and apply the answer; "error" when none came."""
    reading = ask(runtime, record)
    if reading is None:
        return "error"
    return apply_reading(runtime, record, reading)


def overdue_due(runtime: Runtime, record: LedgerRecord, now: datetime) -> bool:
    """Overdue now and not yet logged (nor noted) as such."""
    return not record.overdue_at and is_overdue(runtime, record, now)


def is_overdue(runtime: Runtime, record: LedgerRecord, now: datetime) -> bool:
    """No outcome from Syskit Point BRIDGE_OUTCOME_OVERDUE_SECONDS after it was sent (the reconciler's rule, and
    the operator list's ``overdue`` filter)."""
    if record.status not in OVERDUE_STATUSES:
        return False
    if record.overdue_at:
        return True
    since = parse_iso(record.submitted_at or record.created_at)
    return since is not None and now >= since + timedelta(seconds=runtime.settings.outcome_overdue)


def note_overdue(runtime: Runtime, record: LedgerRecord) -> bool:
    """Mark the record overdue (and owe its ticket the note, when write-back is on) in one write, then log it
    and queue the note. True when this call marked it (once per request)."""
    from deskbridge import writeback

    now = runtime.clock.now()

    marked: list[bool] = []

    def mark(latest: LedgerRecord) -> LedgerRecord | None:
        marked.clear()
        if not overdue_due(runtime, latest, now):  # noted already (another sweep), or settled meanwhile
            return None
        latest.overdue_at = iso(now)
        writeback.owe(runtime, latest, writeback.OVERDUE, now)
        marked.append(True)
        return latest

    record = runtime.ledger.change(record.source, record.ticket, mark) or record
    if not marked:
        return False
    log.error(
        "overdue: %s/%s has had no outcome from Syskit Point since %s (BRIDGE_OUTCOME_OVERDUE_SECONDS)",
        record.source,
        record.ticket,
        record.submitted_at or record.created_at,
        extra={
            "bridge_event": "overdue",
            "source": record.source,
            "ticket": record.ticket,
            "outcome": "overdue",
        },
    )
    writeback.send(runtime, record, writeback.OVERDUE)
    return True


def confirmed(runtime: Runtime, candidates: list[LedgerRecord], event: Event) -> list[LedgerRecord]:
    """The open requests of one workspace name whose status Syskit Point, asked by request id, says agrees with
    ``event`` (a request without an id cannot be asked, and is not confirmed)."""
    agreeing = {
        Event.EVENT_COMPLETED: (point_status.COMPLETED,),
        Event.EVENT_FAILED: (point_status.FAILED,),
        Event.EVENT_STARTED: (point_status.RUNNING, point_status.COMPLETED, point_status.FAILED),
    }[event]
    found = []
    for record in candidates:
        if not record.point_request_id:
            continue
        reading = ask(runtime, record)
        if reading is not None and reading.outcome in agreeing:
            found.append(record)
    return found
