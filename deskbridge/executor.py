"""Performs lifecycle transitions (deskbridge.lifecycle) on ledger records, safe to crash between any two steps.

For every transition:

1. the new state is written to the ledger in ONE write, together with
   everything its effects need later: a fresh attempt token and the next
   attempt time for a retry, the desk update the ticket is now owed;
2. only then are the effects performed: the retry message, the desk-update
   message, the poison message, the log lines.

A process that dies after 1 and before 2 leaves a record that says what is
missing, and the reconciler redoes it: a queued record whose next attempt is
overdue gets a new message, a desk update still owed past its due time is
queued again. A process that dies during 1 leaves the previous state, which
the host's redelivery, the desk's retry or the reconciler moves forward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from deskbridge import telemetry
from deskbridge.ledger import LedgerRecord, StaleRecord, iso
from deskbridge.lifecycle import NEW, Effect, Event, allowed, transition
from deskbridge.model import Status
from deskbridge.retries import QueueKey, new_token
from deskbridge.runtime import Runtime

log = telemetry.logger("deskbridge")

_RETRY = (Effect.RETRY_LATER, Effect.RETRY_NOW)


@dataclass
class Change:
    """An event and what it brings besides its name."""

    event: Event
    error: str | None = None  # the record's last_error: None keeps it, "" clears it
    default_error: str = ""  # used only when the record has no last_error yet
    delay: int = 0  # seconds to the next attempt (RETRY_LATER)
    attempted: bool = False  # one more attempt was made
    sends: int = 0  # provisioning POSTs that left during it
    fields: dict[str, Any] = field(default_factory=dict)  # record fields the event sets
    event_key: str = ""  # a Syskit Point idempotency key to remember on the record


@dataclass(frozen=True)
class Moved:
    record: LedgerRecord
    effects: tuple[Effect, ...] = ()
    applied: bool = True  # False: the record was left as it was (the event did not apply to it)


def apply(runtime: Runtime, record: LedgerRecord, change: Change) -> tuple[Effect, ...]:
    """Move ``record`` (in memory) to its new state with everything the effects will need."""
    before = record.status or NEW
    state, effects = transition(before, change.event)
    now = runtime.clock.now()
    if before == Status.FAILED_IN_POINT and change.event == Event.REPLAY:
        # A new attempt, recorded as such: what Syskit Point said last time no longer holds, and the
        # ticket's updates of this round are new ones (their own step names and markers).
        record.outcome_round += 1
        for name in ("point_request_id", "url", "microsoft_id", "correlation_id", "polled_at", "poll_unreadable",
                     "overdue_at", "submitted_at"):
            setattr(record, name, "")
        record.polls = 0
    record.status = state
    record.remember(f"{change.event}>{state}")
    if change.attempted:
        record.attempts += 1
    record.sends += change.sends
    for name, value in change.fields.items():
        setattr(record, name, value)
    if change.error is not None:
        record.last_error = change.error[:1000]
    elif change.default_error and not record.last_error:
        record.last_error = change.default_error[:1000]
    if change.event_key:
        record.add_event(change.event_key)
        record.event_at = iso(now)
    if Effect.RESTART_SCHEDULE in effects:
        record.replayed_at = iso(now)  # the retry schedule starts again from here
        record.replay_base = record.attempts
    if any(effect in _RETRY for effect in effects):
        delay = change.delay if Effect.RETRY_LATER in effects else 0
        record.attempt_token = new_token()  # any older message for this record is now dropped
        record.next_attempt_at = iso(now + timedelta(seconds=delay))
    else:
        record.next_attempt_at = ""
    if Effect.NOTIFY_DESK in effects:
        from deskbridge import writeback  # loaded when a ticket is first owed an outcome, not by every approval

        writeback.owe(runtime, record, str(state), now)
    return effects


def step(runtime: Runtime, record: LedgerRecord, change: Change, *, strict: bool = False) -> Moved | None:
    """Apply one transition to a record read (or built) by the caller, write it, perform its effects.

    A new record (status NEW) is inserted: None when one exists for the ticket already. A known record
    is saved with its ETag; when another writer got there first (a Syskit Point event during the call),
    ``strict`` raises StaleRecord, otherwise the event is applied to what the ledger holds now, if it
    still applies there, and the attempt's details are kept either way.
    """
    source, ticket = record.source, record.ticket
    is_new = (record.status or NEW) == NEW
    effects = apply(runtime, record, change)
    if is_new:
        if not runtime.ledger.insert(record):
            return None
    else:
        try:
            record = runtime.ledger.save(record)
        except StaleRecord:
            if strict:
                raise
            log.info("ledger changed during the call for %s/%s; applying %s to what is there", source, ticket,
                     change.event)
            return in_ledger(runtime, source, ticket, change, keep_details=True)
    perform(runtime, record, effects, change)
    return Moved(record, effects)


def in_ledger(
    runtime: Runtime,
    source: str,
    ticket: str,
    change: Change,
    guard: Callable[[LedgerRecord], bool] | None = None,
    *,
    keep_details: bool = False,
) -> Moved | None:
    """Read the record, apply the event if it applies (and ``guard`` agrees), write with the ETag
    (again on a race), then perform the effects. None when there is no record.

    ``keep_details``: when the event no longer applies, still record the attempt it reports (its count,
    the POSTs sent, Syskit Point's request id and status), so nothing a call learned is lost.
    """
    applied: list[tuple[Effect, ...]] = []

    def mutate(current: LedgerRecord) -> LedgerRecord | None:
        applied.clear()
        if (guard is not None and not guard(current)) or not allowed(current.status, change.event):
            if not keep_details or not (change.attempted or change.sends):
                return None
            current.attempts += 1 if change.attempted else 0
            current.sends += change.sends
            current.point_request_id = current.point_request_id or change.fields.get("point_request_id", "")
            current.point_status = change.fields.get("point_status") or current.point_status
            current.remember(f"{change.event}>{current.status} (kept)")
            return current
        applied.append(apply(runtime, current, change))
        return current

    record = runtime.ledger.change(source, ticket, mutate)
    if record is None:
        return None
    if not applied:
        return Moved(record, (), applied=False)
    perform(runtime, record, applied[0], change)
    return Moved(record, applied[0])


def perform(runtime: Runtime, record: LedgerRecord, effects: tuple[Effect, ...], change: Change) -> None:
    """The effects of a transition already written; each one can be redone from the record."""
    for effect in effects:
        if effect in _RETRY:
            delay = change.delay if effect == Effect.RETRY_LATER else 0
            key = QueueKey(record.source, record.ticket, token=record.attempt_token)
            try:
                runtime.retry_queue.schedule(key, delay)
            except Exception as exc:  # the record says queued: the reconciler sends it when it is overdue
                log.error(
                    "could not queue the next attempt for %s/%s (%s); the reconciler will",
                    record.source,
                    record.ticket,
                    type(exc).__name__,
                    extra={"bridge_event": "retry", "source": record.source, "ticket": record.ticket,
                           "outcome": "not_queued"},
                )
        elif effect == Effect.NOTIFY_DESK:
            from deskbridge import writeback

            writeback.send(runtime, record, str(record.status))
        elif effect == Effect.POISON:
            log.error(
                "request %s/%s failed: %s",
                record.source,
                record.ticket,
                record.last_error,
                extra={"bridge_event": "failed", "source": record.source, "ticket": record.ticket,
                       "outcome": Status.FAILED},
            )
            try:
                runtime.retry_queue.to_poison(QueueKey(record.source, record.ticket, token=record.attempt_token))
            except Exception as exc:
                log.error("could not write %s/%s to the poison queue: %s", record.source, record.ticket,
                          type(exc).__name__)
        elif effect == Effect.WARN_UNCERTAIN:
            log.warning(
                "uncertain %s/%s: %s",
                record.source,
                record.ticket,
                record.last_error,
                extra={"bridge_event": "uncertain", "source": record.source, "ticket": record.ticket,
                       "outcome": Status.UNCERTAIN},
            )
        elif effect == Effect.ALERT_CONFIG:
            log.error(
                "Syskit Point cannot be used for %s/%s until an administrator acts: %s",
                record.source,
                record.ticket,
                record.last_error,
                extra={"bridge_event": "authorization", "source": record.source, "ticket": record.ticket,
                       "point_status": record.point_status or ""},
            )
