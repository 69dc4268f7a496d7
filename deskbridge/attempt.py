"""One attempt: what it needs before anything is written, one call to Syskit Point, and what its answer means.

Used by intake (the first attempt) and the retry worker (every later one).
:func:`prepare` does everything that can fail before the first Syskit Point
call (the settings the attempt and its outcome need, the client, a token)
before the caller writes ``pending``: a missing setting leaves nothing
behind, and no token turns into ``queued`` with nothing sent. ``pending``
then means exactly "a POST may be in flight".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from deskbridge.errors import TokenError
from deskbridge.executor import Change, step
from deskbridge.ledger import LedgerRecord, iso, parse_iso
from deskbridge.lifecycle import Effect, Event
from deskbridge.model import Limits, Policy, ProvisioningRequest, validate
from deskbridge.retries import next_delay
from deskbridge.runtime import Runtime
from deskbridge.settings import SETTING_GROUPS, ConfigurationError, Settings, check_all, uses_client_secret

if TYPE_CHECKING:
    from deskbridge.point import PointClient, ProvisionResult


@dataclass(frozen=True)
class Ready:
    point: PointClient
    deadline: float  # the attempt's budget ends here (PointClient's clock)
    token_error: TokenError | None = None  # no token: nothing may be sent


def policy_from(runtime: Runtime) -> Policy:
    s = runtime.settings
    return Policy(
        allowed_template_ids=s.template_ids,
        default_template_ids=s.default_template_ids,
        default_workspace_type=s.default_workspace_type,
        limits=Limits(max_owners=s.max_owners, max_members=s.max_members),
    )


def request_from_record(record: LedgerRecord, policy: Policy) -> ProvisioningRequest:
    """The stored body, checked again: the ledger is data, and the settings may have changed since."""
    return validate(record.point_body() | {"workspaceType": record.workspace_type}, policy)


def setting_groups(s: Settings) -> tuple[str, ...]:
    """The setting groups (deskbridge.settings.SETTING_GROUPS) an attempt reads: the Syskit Point client and
    its token (Key Vault in secret mode), and the outcome."""
    return ("point", "key vault", "outcome") if uses_client_secret(s) else ("point", "outcome")


def setting_problems(runtime: Runtime) -> list[ConfigurationError]:
    """What :func:`prepare` would refuse, all of it and without building or sending anything, each named once."""
    return check_all(runtime.settings, setting_groups(runtime.settings))


def prepare(runtime: Runtime) -> Ready:
    """Everything an attempt needs, before anything is written. ConfigurationError names a bad setting."""
    # The settings the outcome needs: read now, so a bad one fails before the record, not after the call.
    for read in SETTING_GROUPS["outcome"](runtime.settings):
        read()
    point = runtime.point
    deadline = point.deadline()  # the token request counts against the budget too
    try:
        point.tokens.token()
    except TokenError as exc:
        return Ready(point, deadline, exc)
    return Ready(point, deadline)


def _delay(runtime: Runtime, record: LedgerRecord, now: datetime, retry_after: float | None = None) -> int | None:
    since = parse_iso(record.replayed_at or record.created_at) or now
    s = runtime.settings
    return next_delay(
        record.attempts + 1 - record.replay_base,
        (now - since).total_seconds(),
        s.retry_schedule,
        s.retry_max_age,
        retry_after,
    )


def _again(runtime: Runtime, record: LedgerRecord, event: Event, message: str, retry_after: float | None = None,
           **details: Any) -> Change:
    """A retryable outcome: on the schedule, or the end of it."""
    delay = _delay(runtime, record, runtime.clock.now(), retry_after)
    if delay is None:
        return Change(Event.RETRIES_EXHAUSTED, error=message, attempted=True, **details)
    return Change(event, error=message, delay=delay, attempted=True, **details)


def not_ready(runtime: Runtime, record: LedgerRecord, exc: TokenError) -> Change:
    """No token: Key Vault or Entra ID unreachable (retry), or a setting or consent problem (an admin acts)."""
    return _again(runtime, record, Event.NOT_READY if exc.transient else Event.MISCONFIGURED, str(exc))


def misconfigured(runtime: Runtime, record: LedgerRecord, exc: Exception) -> Change:
    return _again(runtime, record, Event.MISCONFIGURED, str(exc))


def outcome(runtime: Runtime, record: LedgerRecord, result: ProvisionResult) -> Change:
    """What Syskit Point's answer (a ProvisionResult) means for the request."""
    from deskbridge.point import CallOutcome

    fields: dict[str, Any] = {"point_status": result.http_status or 0}
    details = {"sends": result.sends, "fields": fields}
    if result.outcome == CallOutcome.ACCEPTED:
        fields |= {"point_request_id": result.request_id or "", "submitted_at": iso(runtime.clock.now())}
        return Change(Event.ANSWERED_2XX, error="", attempted=True, **details)
    if result.outcome == CallOutcome.REJECTED:
        return Change(Event.ANSWERED_4XX, error=result.message, attempted=True, **details)
    if result.outcome == CallOutcome.UNCERTAIN:
        event = Event.ANSWERED_5XX if result.http_status else Event.NO_ANSWER
        return Change(event, error=result.message, attempted=True, **details)
    if result.outcome in (CallOutcome.UNAUTHORIZED, CallOutcome.MISCONFIGURED):
        return _again(runtime, record, Event.MISCONFIGURED, result.message, **details)
    return _again(runtime, record, Event.RETRYABLE, result.message, result.retry_after, **details)


def run(
    runtime: Runtime,
    record: LedgerRecord,
    change: Change,
    ready: Ready,
    request: ProvisioningRequest,
    *,
    strict_first: bool = False,
) -> LedgerRecord | None:
    """Apply ``change``, and while the new state calls for it, call Syskit Point and apply its answer.

    None when ``record`` is new and the ticket is recorded already (a duplicate). ``strict_first``: the
    first write raises StaleRecord when the record changed since it was read (a claim someone else made).
    """
    strict = strict_first
    while True:
        moved = step(runtime, record, change, strict=strict)
        strict = False
        if moved is None:
            return None
        record = moved.record
        if Effect.CALL_POINT not in moved.effects or not moved.applied:
            return record
        change = outcome(runtime, record, ready.point.provision(request, ready.deadline))

