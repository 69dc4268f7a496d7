"""Operator actions: ``python -m deskbridge replay SOURCE TICKET``.

A replay of the request gives it a new attempt token and one message for an
attempt now, and starts its retry schedule again; any message still waiting
for it (a delayed retry) carries the old token and is dropped when it comes.
It takes failed, uncertain, queued and rejected requests (a person decided),
point_failed ones (a new attempt, recorded as such: the next outcome is a new
round of ticket updates), and a pending one only when its worker is surely
gone.

A replay of the desk updates re-drives what the write-back gave up (the desk
refused, or stayed down until the host poisoned the message): each is owed
again, and its new try looks at the desk before writing.

``what``: ``request``, ``desk``, or ``auto``: the desk updates when some were
given up and the request is not one a new attempt is meant for (it went
through, or Syskit Point failed it: its note is what the ticket missed), the
request otherwise.
"""

from __future__ import annotations

from deskbridge import telemetry
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import LedgerRecord
from deskbridge.lifecycle import Event, allowed
from deskbridge.model import Status
from deskbridge.runtime import Runtime
from deskbridge.worker import settle_stale, stale

log = telemetry.logger("deskbridge")

WHAT = ("auto", "request", "desk")


def replay(runtime: Runtime, source: str, ticket: str, what: str = "auto") -> LedgerRecord:
    """Queue a failed, uncertain, rejected, point_failed, queued or stuck request for an attempt now, or re-drive
    the desk updates given up (see the module docstring for ``what``)."""
    from deskbridge import writeback

    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}")
    record = runtime.ledger.get(source, ticket)
    if record is None:
        raise LookupError(f"no request is recorded for {source}/{ticket}")
    if what == "desk" or (what == "auto" and desk_first(record)):
        return _redrive(runtime, record, writeback.given_up(record))
    return _replay_request(runtime, source, ticket)


def desk_first(record: LedgerRecord) -> bool:
    """``auto``: the desk updates, when some were given up and a new attempt is not what the request is for."""
    from deskbridge import writeback

    new_attempt = allowed(record.status, Event.REPLAY) and record.status != Status.FAILED_IN_POINT
    return bool(writeback.given_up(record)) and not new_attempt


def _redrive(runtime: Runtime, record: LedgerRecord, given_up: list[str]) -> LedgerRecord:
    from deskbridge import writeback

    source, ticket = record.source, record.ticket
    if not given_up:
        raise ValueError(f"{source}/{ticket} has no desk update that was given up")
    updates = writeback.redrive(runtime, source, ticket)
    if not updates:
        raise ValueError(f"{source}/{ticket}: its desk updates are owed already (being written); nothing to re-drive")
    log.warning(
        "operator re-drove the desk updates %s of %s/%s",
        ", ".join(updates),
        source,
        ticket,
        extra={"bridge_event": "replay", "source": source, "ticket": ticket, "outcome": "desk_update"},
    )
    return runtime.ledger.get(source, ticket) or record


def _replay_request(runtime: Runtime, source: str, ticket: str) -> LedgerRecord:
    moved = in_ledger(runtime, source, ticket, Change(Event.REPLAY))
    if moved is not None and not moved.applied and moved.record.status == Status.PENDING:
        if not stale(runtime, moved.record):
            raise ValueError(f"{source}/{ticket} is being attempted right now; try again in a minute")
        settle_stale(runtime, source, ticket)  # its worker is surely gone: uncertain, which a replay takes
        moved = in_ledger(runtime, source, ticket, Change(Event.REPLAY))
    if moved is None:
        raise LookupError(f"no request is recorded for {source}/{ticket}")
    if not moved.applied:
        raise ValueError(
            f"{source}/{ticket} is {moved.record.status}; only failed, uncertain, rejected, point_failed or queued "
            "requests can be replayed (or desk updates that were given up)"
        )
    log.warning(
        "operator replayed %s/%s",
        source,
        ticket,
        extra={"bridge_event": "replay", "source": source, "ticket": ticket},
    )
    return moved.record
