"""The reconciler: a timer (BRIDGE_RECONCILE_SCHEDULE, every 5 minutes) that moves every stranded state forward.

A process can die between any two steps of a flow; each step leaves the
ledger saying what is missing, and one sweep finds it:

- ``pending`` past the stale limit (longer than any attempt can take):
  ``uncertain``, with the reason (a call may have reached Syskit Point);
- ``queued`` whose next attempt is overdue by more than
  BRIDGE_QUEUE_GRACE_SECONDS: its message was lost, a new one is sent (with
  a new attempt token, so the old one is dropped should it still come);
- a desk update owed and overdue by the same grace period: queued again,
  and the write-back looks for its marker before writing;
- optionally (BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS), ``uncertain`` with no
  Syskit Point event for its workspace in that time: sent again;
- ``submitted`` or ``provisioning`` (and ``uncertain`` with a request id)
  with no word from Syskit Point for BRIDGE_OUTCOME_POLL_AFTER_SECONDS, then
  at a growing interval: Syskit Point is asked by request id and its answer
  applied (deskbridge.outcomes); with no outcome after
  BRIDGE_OUTCOME_OVERDUE_SECONDS: logged ``overdue`` once, its ticket told once;
- a note owed to a ticket whose approval was refused at intake, its message
  lost: queued again;
- delivery ids (the signed approval routes' webhook-id) older than
  BRIDGE_DELIVERY_RETENTION_SECONDS: pruned;
- settled records (completed, point_failed, rejected, failed) last changed
  more than BRIDGE_RECORD_RETENTION_DAYS ago and owing the desk nothing: the
  people in their body removed, the audit fields kept (deskbridge.retention).

The Table service filters the ledger (open statuses and due dates only), so a
sweep costs little however many settled requests it holds. One structured
log line per sweep carries the counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from deskbridge import telemetry
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import AWAITING_OUTCOME, LedgerRecord, Stranded, parse_iso
from deskbridge.lifecycle import Event
from deskbridge.model import Status
from deskbridge.runtime import Runtime
from deskbridge.worker import settle_stale

log = telemetry.logger("deskbridge.reconciler")


@dataclass
class Sweep:
    examined: int = 0  # records the service returned
    stale_pending: int = 0  # pending -> uncertain
    requeued: int = 0  # queued, message lost -> a new message
    desk_requeued: int = 0  # owed desk updates queued again
    resent: int = 0  # uncertain -> queued again (optional)
    polled: int = 0  # Syskit Point asked for a request's status by its request id
    settled_by_poll: int = 0  # ... and its answer settled the request (or found an uncertain one)
    overdue: int = 0  # newly overdue: logged, and noted on the ticket
    pruned: int = 0  # delivery ids deleted
    erased: int = 0  # settled records past BRIDGE_RECORD_RETENTION_DAYS whose people were removed
    errors: int = 0  # records that could not be handled this time (next sweep tries again)
    duration_ms: float = 0.0


def sweep(runtime: Runtime) -> Sweep:
    clock = runtime.clock
    started = clock.monotonic()
    s = runtime.settings
    now = clock.now()
    counts = Sweep()
    stale_before = now - timedelta(seconds=s.pending_stale)
    lost_before = now - timedelta(seconds=s.queue_grace)
    resend_after = s.uncertain_resend_after
    uncertain_before = (
        now - timedelta(seconds=resend_after) if resend_after is not None and s.point_webhook_key_secret_names else None
    )
    quiet_before = now - timedelta(seconds=s.outcome_poll_after)
    for found in runtime.ledger.stranded(stale_before, lost_before, uncertain_before, quiet_before):
        counts.examined += 1
        try:
            _record(runtime, found, counts, stale_before, lost_before, uncertain_before)
        except Exception as exc:  # one record must not stop the sweep
            counts.errors += 1
            log.warning("reconciler could not handle %s/%s: %s", found.source, found.ticket, type(exc).__name__)
    try:  # a refusal note whose message was lost (deskbridge.writeback.owe_refusal)
        from deskbridge import writeback

        counts.desk_requeued += writeback.requeue_refusals(runtime, lost_before)
    except Exception as exc:
        counts.errors += 1
        log.warning("reconciler could not look for refusal notes owed: %s", type(exc).__name__)
    try:
        counts.pruned = runtime.deliveries.prune(now - timedelta(seconds=s.delivery_retention))
    except Exception as exc:
        counts.errors += 1
        log.warning("reconciler could not prune delivery ids: %s", type(exc).__name__)
    try:
        counts.erased = _retain(runtime, now - timedelta(days=s.record_retention_days), counts)
    except Exception as exc:
        counts.errors += 1
        log.warning("reconciler could not apply the record retention: %s", type(exc).__name__)
    counts.duration_ms = round((clock.monotonic() - started) * 1000, 1)
    log.info(
        "reconcile examined %d: %d stale pending, %d re-queued, %d desk updates re-queued, %d re-sent, "
        "%d polled (%d settled), %d overdue, %d delivery ids pruned, %d records' people erased, %d errors",
        counts.examined,
        counts.stale_pending,
        counts.requeued,
        counts.desk_requeued,
        counts.resent,
        counts.polled,
        counts.settled_by_poll,
        counts.overdue,
        counts.pruned,
        counts.erased,
        counts.errors,
        extra={"bridge_event": "reconcile", **asdict(counts)},
    )
    return counts


def _retain(runtime: Runtime, cutoff: datetime, counts: Sweep) -> int:
    """Remove the people from settled records last changed before ``cutoff``; how many were changed.

    Erasing writes the record, so its UpdatedAt moves on and the next sweeps do not read it again for the
    retention period; those read then are skipped by their ErasedAt (only five small properties come back).
    """
    from deskbridge.retention import SETTLED

    found, _ = runtime.ledger.find(
        SETTLED, updated_before=cutoff, columns=["Status", "ErasedAt", "DeskOwed", "UpdatedAt"]
    )
    erased = 0
    for candidate in found:
        if candidate.erased_at or candidate.desk_owed:  # done already; or the ticket is still owed its outcome
            continue

        try:
            erased += _erase_if_due(runtime, candidate.source, candidate.ticket, cutoff)
        except Exception as exc:  # one record must not stop the sweep
            counts.errors += 1
            log.warning("reconciler could not erase %s/%s: %s", candidate.source, candidate.ticket, type(exc).__name__)
    return erased


def _erase_if_due(runtime: Runtime, source: str, ticket: str, cutoff: datetime) -> bool:
    """Erase one record's people if, as the ledger holds it now, it is still settled, due and not erased."""
    from deskbridge.operator import erase_in
    from deskbridge.retention import SETTLED

    done: list[bool] = []

    def forget(record: LedgerRecord) -> LedgerRecord | None:
        done.clear()
        if (
            record.status not in SETTLED
            or record.erased_at
            or record.desk_owed
            or not _before(record.updated_at, cutoff)
        ):
            return None
        erase_in(record, runtime.clock.now())
        done.append(True)
        return record

    runtime.ledger.change(source, ticket, forget)
    return bool(done)


def _before(text: str, moment: datetime) -> bool:
    when = parse_iso(text)
    return when is not None and when < moment


def _record(
    runtime: Runtime,
    found: Stranded,
    counts: Sweep,
    stale_before: datetime,
    lost_before: datetime,
    uncertain_before: datetime | None,
) -> None:
    from deskbridge import writeback

    source, ticket = found.source, found.ticket
    if found.status == Status.PENDING and _before(found.updated_at, stale_before):
        moved = settle_stale(runtime, source, ticket)
        if moved and moved.applied:
            counts.stale_pending += 1
    elif found.status == Status.QUEUED and _before(found.next_attempt_at, lost_before):

        def still_lost(latest: LedgerRecord) -> bool:
            return latest.status == Status.QUEUED and _before(latest.next_attempt_at, lost_before)

        moved = in_ledger(runtime, source, ticket, Change(Event.MESSAGE_LOST), still_lost)
        if moved and moved.applied:
            counts.requeued += 1
            log.warning(
                "the retry message for %s/%s was lost; queued it again",
                source,
                ticket,
                extra={"bridge_event": "retry", "source": source, "ticket": ticket, "outcome": "requeued"},
            )
    elif (
        found.status == Status.UNCERTAIN
        and not found.point_request_id  # with one, Syskit Point is asked instead (below)
        and uncertain_before is not None
        and _before(found.updated_at, uncertain_before)
        and not _event_since(runtime, found)
    ):

        def still_unheard(latest: LedgerRecord) -> bool:
            return latest.status == Status.UNCERTAIN and _before(latest.updated_at, uncertain_before)

        moved = in_ledger(runtime, source, ticket, Change(Event.RESEND_UNCERTAIN), still_unheard)
        if moved and moved.applied:
            counts.resent += 1
            log.warning(
                "uncertain %s/%s sent again: no Syskit Point event for its workspace came within "
                "BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS",
                source,
                ticket,
                extra={"bridge_event": "retry", "source": source, "ticket": ticket, "outcome": "resent"},
            )
    elif found.status in AWAITING_OUTCOME:
        _outcome(runtime, source, ticket, counts)
    for update, owed in found.desk_owed.items():
        if _before(owed.get("due", ""), lost_before) and writeback.requeue(
            runtime, source, ticket, update, lost_before
        ):
            counts.desk_requeued += 1


def _outcome(runtime: Runtime, source: str, ticket: str, counts: Sweep) -> None:
    """Ask Syskit Point when it is time, then note the request overdue when that is due."""
    from deskbridge import outcomes

    now = runtime.clock.now()
    record = runtime.ledger.get(source, ticket)
    if record is None:
        return
    if outcomes.poll_due(runtime, record, now):
        counts.polled += 1
        result = outcomes.poll(runtime, record)
        if result == "error":
            counts.errors += 1
        elif result not in ("running", "unreadable", ""):
            counts.settled_by_poll += 1
        record = runtime.ledger.get(source, ticket) or record
    if outcomes.overdue_due(runtime, record, now) and outcomes.note_overdue(runtime, record):
        counts.overdue += 1


def _event_since(runtime: Runtime, found: Stranded) -> bool:
    """Whether a Syskit Point event for this workspace came since the request became uncertain
    (it settled another request of the same name: which one Syskit Point made is not certain)."""
    since = parse_iso(found.updated_at)
    for record in runtime.ledger.by_name(found.name_key, found.workspace_type):
        when = parse_iso(record.event_at)
        if when is not None and since is not None and when >= since:
            return True
    return False
