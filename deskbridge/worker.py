"""The retry worker: a message from the retry queue came due.

Only the message carrying the record's current attempt token may act: any
other (a replay or a reconciler re-queue made a newer one) is dropped with a
log line, and only then deleted. The current message claims the queued
record (``pending``, with its ETag) after everything the attempt needs is in
hand, then makes one attempt. A redelivered message that finds its own claim
still ``pending`` (the worker before it died) waits until no attempt can
still be running, then settles the request as ``uncertain``: it is never
simply dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from deskbridge import attempt, telemetry
from deskbridge.executor import Change, Moved, in_ledger
from deskbridge.ledger import LedgerRecord, StaleRecord, parse_iso
from deskbridge.lifecycle import Event
from deskbridge.model import InvalidRequest, Status
from deskbridge.retries import QueueKey
from deskbridge.runtime import Runtime
from deskbridge.settings import ConfigurationError

log = telemetry.logger("deskbridge")

STALE_REASON = "a worker stopped while calling Syskit Point; check Syskit Point, then replay"


def stale(runtime: Runtime, record: LedgerRecord) -> bool:
    """Pending for longer than any attempt can take: the worker that claimed it is gone."""
    updated = parse_iso(record.updated_at)
    return updated is None or (runtime.clock.now() - updated).total_seconds() > runtime.settings.pending_stale


def settle_stale(
    runtime: Runtime, source: str, ticket: str, also: Callable[[LedgerRecord], bool] | None = None
) -> Moved | None:
    """Make a pending record whose worker is surely gone ``uncertain`` (STALE_CLAIM), if it still is one when
    written (and ``also`` agrees): the one step the retry worker, the reconciler and a replay share."""

    def still_stale(latest: LedgerRecord) -> bool:
        return latest.status == Status.PENDING and stale(runtime, latest) and (also is None or also(latest))

    return in_ledger(runtime, source, ticket, Change(Event.STALE_CLAIM, error=STALE_REASON), still_stale)


def current(record: LedgerRecord, key: QueueKey) -> bool:
    """Whether the message belongs to the record's current chain (messages of older versions carry none)."""
    return key.token == record.attempt_token


def _log(key: QueueKey, outcome: str, message: str, *args: object) -> None:
    log.info(message, *args, extra={"bridge_event": "retry", "source": key.source, "ticket": key.ticket,
                                    "outcome": outcome})


def retry(runtime: Runtime, message: str, dequeue_count: int = 1) -> str:
    """A retry message came due. Returns what happened (for logs and tests)."""
    try:
        key = QueueKey.decode(message)
    except ValueError as exc:
        log.error("dropped a malformed retry message: %s", exc)
        return "malformed"
    record = runtime.ledger.get(key.source, key.ticket)
    if record is None:
        log.warning("retry for unknown request %s/%s dropped", key.source, key.ticket)
        return "unknown"
    if not current(record, key):
        _log(key, "superseded", "retry for %s/%s dropped: its attempt token is not the current one (a newer "
             "message replaced it)", key.source, key.ticket)
        return "superseded"
    if record.status == Status.PENDING:
        return _claimed_before(runtime, key, record, dequeue_count)
    if record.status != Status.QUEUED:
        _log(key, "skipped", "retry for %s/%s skipped: already %s", key.source, key.ticket, record.status)
        return "skipped"

    def still_ours(latest: LedgerRecord) -> bool:
        return latest.status == Status.QUEUED and current(latest, key)

    try:
        request = attempt.request_from_record(record, attempt.policy_from(runtime))
    except InvalidRequest as exc:
        moved = in_ledger(runtime, key.source, key.ticket,
                          Change(Event.NO_LONGER_VALID, error=f"no longer valid: {exc}"), still_ours)
        return moved.record.status if moved else "unknown"
    started = runtime.clock.monotonic()
    try:
        ready = attempt.prepare(runtime)
    except ConfigurationError as exc:
        log.error("configuration problem: %s", exc, extra={"bridge_event": "config", "setting": exc.setting})
        moved = in_ledger(runtime, key.source, key.ticket, attempt.misconfigured(runtime, record, exc), still_ours)
        return moved.record.status if moved else "unknown"
    if ready.token_error is not None:
        moved = in_ledger(runtime, key.source, key.ticket, attempt.not_ready(runtime, record, ready.token_error),
                          still_ours)
        settled = moved.record if moved else record
    else:
        try:
            settled = attempt.run(runtime, record, Change(Event.RETRY_DUE), ready, request, strict_first=True)
        except StaleRecord:
            _log(key, "skipped", "retry for %s/%s skipped: claimed by another worker", key.source, key.ticket)
            return "skipped"
        settled = settled or record
    log.info(
        "retry %s/%s %s",
        key.source,
        key.ticket,
        settled.status,
        extra={
            "bridge_event": "retry",
            "source": key.source,
            "ticket": key.ticket,
            "outcome": settled.status,
            "attempts": settled.attempts,
            "point_status": settled.point_status or "",
            "duration_ms": round((runtime.clock.monotonic() - started) * 1000, 1),
        },
    )
    return settled.status


def _claimed_before(runtime: Runtime, key: QueueKey, record: LedgerRecord, dequeue_count: int) -> str:
    """This message's chain claimed the record and its worker has not settled it: dead, or still calling."""

    if stale(runtime, record):
        moved = settle_stale(runtime, key.source, key.ticket, also=lambda latest: current(latest, key))
        return moved.record.status if moved else "unknown"
    # Not yet stale: come back when no attempt can still be running (the message must not be lost).
    updated = parse_iso(record.updated_at) or runtime.clock.now()
    stale_at = updated + timedelta(seconds=runtime.settings.pending_stale)
    wait = max(1, int((stale_at - runtime.clock.now()).total_seconds()) + 1)
    runtime.retry_queue.schedule(key, wait)
    _log(key, "waiting", "retry for %s/%s (delivery %d) found its claim still pending; looking again in %d s",
         key.source, key.ticket, dequeue_count, wait)
    return "waiting"


def poisoned(runtime: Runtime, message: str) -> str:
    """A retry message reached the poison queue: a queued request failed, a claimed one is uncertain."""
    try:
        key = QueueKey.decode(message)
    except ValueError:
        log.error("malformed message in the poison queue")
        return "malformed"

    def ours(latest: LedgerRecord) -> bool:
        return current(latest, key)

    change = Change(Event.POISONED, default_error="the retry message was poisoned (the worker kept failing)")
    moved = in_ledger(runtime, key.source, key.ticket, change, ours)
    outcome = moved.record.status if moved else "unknown"
    log.error(
        "poisoned retry for %s/%s; ledger says %s",
        key.source,
        key.ticket,
        outcome,
        extra={"bridge_event": "poisoned", "source": key.source, "ticket": key.ticket, "outcome": outcome},
    )
    return outcome
