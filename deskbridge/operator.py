"""Operator actions: ``python -m deskbridge replay SOURCE TICKET``.

A replay gives the request a new attempt token and one message for an
attempt now, and starts its retry schedule again; any message still waiting
for it (a delayed retry) carries the old token and is dropped when it comes.
It takes failed, uncertain, queued and rejected requests (a person decided),
and a pending one only when its worker is surely gone.
"""

from __future__ import annotations

from deskbridge import telemetry
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import LedgerRecord
from deskbridge.lifecycle import Event
from deskbridge.model import Status
from deskbridge.runtime import Runtime
from deskbridge.worker import settle_stale, stale

log = telemetry.logger("deskbridge")


def replay(runtime: Runtime, source: str, ticket: str) -> LedgerRecord:
    """Queue a failed, uncertain, rejected, queued or stuck request for an attempt now."""
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
            f"{source}/{ticket} is {moved.record.status}; only failed, uncertain, rejected or queued requests "
            "can be replayed"
        )
    log.warning(
        "operator replayed %s/%s",
        source,
        ticket,
        extra={"bridge_event": "replay", "source": source, "ticket": ticket},
    )
    return moved.record
