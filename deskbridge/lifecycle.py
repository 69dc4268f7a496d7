"""A provisioning request's lifecycle: its states, the events that move it, and what each move does.

One table, read top to bottom, is the whole behaviour: ``(state, event) ->
(state, effects)``. :func:`transition` looks a pair up and refuses any pair
the table does not name (that event means nothing in that state: the caller
drops it). The effects are performed by deskbridge.executor in a crash-safe
order: the new state is written to the ledger first, every effect after, and
each effect can be redone from what the ledger then says (the reconciler
does that when a process died in between).

Pure: no I/O, no settings. The README's state diagram is :func:`mermaid`'s
output (tests/test_lifecycle.py keeps the two equal).
"""

from __future__ import annotations

from enum import StrEnum

from deskbridge.model import Status

NEW = "new"  # no ledger record yet


class Event(StrEnum):
    ACCEPTED = "accepted"  # intake recorded the approval, a token in hand: the first call follows
    NOT_READY = "not_ready"  # no token (Key Vault or Entra ID unreachable): nothing was sent
    MISCONFIGURED = "misconfigured"  # 401/403 with a fresh token, 404/405 at the endpoint, a token setting
    ANSWERED_2XX = "answered_2xx"
    ANSWERED_4XX = "answered_4xx"  # Syskit Point refused the body: 400, 409, 413, 422, ...
    RETRYABLE = "retryable"  # 408, 425, 429, 503, or provably never sent (connect error)
    RETRIES_EXHAUSTED = "retries_exhausted"  # retryable, but the schedule is over
    ANSWERED_5XX = "answered_5xx"  # 500, 502, 504, other 5xx: Syskit Point may have acted
    NO_ANSWER = "no_answer"  # sent, then a timeout or a dropped connection
    RESUBMITTED = "resubmitted"  # a refused ticket came again with new content
    RETRY_DUE = "retry_due"  # the retry message with the record's current attempt token, a token in hand
    NO_LONGER_VALID = "no_longer_valid"  # the stored body fails today's settings
    STALE_CLAIM = "stale_claim"  # pending longer than any attempt can take: the worker is gone
    POISONED = "poisoned"  # the host gave up on the current retry message
    MESSAGE_LOST = "message_lost"  # queued, but its next attempt is overdue by more than the grace period
    RESEND_UNCERTAIN = "resend_uncertain"  # optional: no Syskit Point event came for it in time
    REPLAY = "replay"  # an operator asked for another attempt
    EVENT_STARTED = "event_started"  # Syskit Point webhooks
    EVENT_COMPLETED = "event_completed"
    EVENT_FAILED = "event_failed"
    # The reconciler asked Syskit Point for the request's status by its request id (no event came in time)
    POLLED_RUNNING = "polled_running"  # it exists and is not done: an uncertain request did reach Syskit Point
    POLLED_COMPLETED = "polled_completed"
    POLLED_FAILED = "polled_failed"
    POLLED_REFUSED = "polled_refused"  # rejected, declined or cancelled in Syskit Point


class Effect(StrEnum):
    CALL_POINT = "call_point"  # send the provisioning request (after the state is written)
    RETRY_LATER = "retry_later"  # a new attempt token, the next attempt on the schedule, then its message
    RETRY_NOW = "retry_now"  # a new attempt token, an attempt now, then its message
    RESTART_SCHEDULE = "restart_schedule"  # the retry schedule starts again from here
    NOTIFY_DESK = "notify_desk"  # owe the ticket this outcome, then queue the desk update
    POISON = "poison"  # the retry message to the poison queue, an error line for the alert
    WARN_UNCERTAIN = "warn_uncertain"  # a warning: check Syskit Point before replaying
    ALERT_CONFIG = "alert_config"  # an error line: an administrator must fix something


P, S, Q, R, U, F = Status.PENDING, Status.SUBMITTED, Status.QUEUED, Status.REJECTED, Status.UNCERTAIN, Status.FAILED
V, C, X = Status.PROVISIONING, Status.COMPLETED, Status.FAILED_IN_POINT
E, A = Event, Effect

_SETTLED_BY_EVENTS = {
    E.EVENT_STARTED: (V, (A.NOTIFY_DESK,)),
    E.EVENT_COMPLETED: (C, (A.NOTIFY_DESK,)),
    E.EVENT_FAILED: (X, (A.NOTIFY_DESK,)),
}
# What a status answer settles: the same states and desk updates as the events.
_SETTLED_BY_POLLS = {
    E.POLLED_COMPLETED: (C, (A.NOTIFY_DESK,)),
    E.POLLED_FAILED: (X, (A.NOTIFY_DESK,)),
    E.POLLED_REFUSED: (R, (A.NOTIFY_DESK,)),
}

# (state, event) -> (new state, effects, in order). Anything not here is dropped.
TABLE: dict[tuple[str, Event], tuple[Status, tuple[Effect, ...]]] = {
    # intake
    (NEW, E.ACCEPTED): (P, (A.CALL_POINT,)),
    (NEW, E.NOT_READY): (Q, (A.RETRY_LATER,)),
    (NEW, E.MISCONFIGURED): (Q, (A.RETRY_LATER, A.ALERT_CONFIG)),
    # one call to Syskit Point, and what its answer means
    (P, E.ANSWERED_2XX): (S, ()),
    (P, E.ANSWERED_4XX): (R, (A.NOTIFY_DESK,)),
    (P, E.RETRYABLE): (Q, (A.RETRY_LATER,)),
    (P, E.MISCONFIGURED): (Q, (A.RETRY_LATER, A.ALERT_CONFIG)),
    (P, E.RETRIES_EXHAUSTED): (F, (A.NOTIFY_DESK, A.POISON)),
    (P, E.ANSWERED_5XX): (U, (A.WARN_UNCERTAIN,)),
    (P, E.NO_ANSWER): (U, (A.WARN_UNCERTAIN,)),
    (P, E.STALE_CLAIM): (U, (A.WARN_UNCERTAIN,)),
    (P, E.POISONED): (U, (A.WARN_UNCERTAIN,)),
    # the retry worker
    (Q, E.RETRY_DUE): (P, (A.CALL_POINT,)),
    (Q, E.NOT_READY): (Q, (A.RETRY_LATER,)),
    (Q, E.MISCONFIGURED): (Q, (A.RETRY_LATER, A.ALERT_CONFIG)),
    (Q, E.RETRIES_EXHAUSTED): (F, (A.NOTIFY_DESK, A.POISON)),
    (Q, E.NO_LONGER_VALID): (R, (A.NOTIFY_DESK,)),
    (Q, E.POISONED): (F, (A.NOTIFY_DESK,)),
    # the reconciler
    (Q, E.MESSAGE_LOST): (Q, (A.RETRY_NOW,)),
    (U, E.RESEND_UNCERTAIN): (Q, (A.RETRY_NOW,)),
    # operators and desks
    (Q, E.REPLAY): (Q, (A.RETRY_NOW, A.RESTART_SCHEDULE)),
    (U, E.REPLAY): (Q, (A.RETRY_NOW, A.RESTART_SCHEDULE)),
    (F, E.REPLAY): (Q, (A.RETRY_NOW, A.RESTART_SCHEDULE)),
    (R, E.REPLAY): (Q, (A.RETRY_NOW, A.RESTART_SCHEDULE)),
    (X, E.REPLAY): (Q, (A.RETRY_NOW, A.RESTART_SCHEDULE)),  # a new attempt after Syskit Point's failure
    (R, E.RESUBMITTED): (P, (A.CALL_POINT,)),
    (R, E.NOT_READY): (Q, (A.RETRY_LATER,)),
    (R, E.MISCONFIGURED): (Q, (A.RETRY_LATER, A.ALERT_CONFIG)),
    # Syskit Point's webhooks settle every open request, an uncertain one too
    **{(state, event): outcome for state in (P, S, Q, U) for event, outcome in _SETTLED_BY_EVENTS.items()},
    (V, E.EVENT_COMPLETED): (C, (A.NOTIFY_DESK,)),
    (V, E.EVENT_FAILED): (X, (A.NOTIFY_DESK,)),
    # the reconciler's poll by request id (submitted, provisioning, or uncertain with a request id)
    **{(state, event): outcome for state in (S, V, U) for event, outcome in _SETTLED_BY_POLLS.items()},
    (U, E.POLLED_RUNNING): (S, ()),  # Syskit Point has it: the operator's question is answered
}

STATES: tuple[str, ...] = (NEW, P, Q, S, R, U, F, V, C, X)
FINAL = frozenset({C})  # nothing moves it (point_failed only by an operator's replay)


class InvalidTransition(ValueError):
    """The event means nothing in this state (a late or duplicate message, an event for a settled request)."""

    def __init__(self, state: str, event: Event) -> None:
        super().__init__(f"{event} does not apply to a {state} request")
        self.state = state
        self.event = event


def transition(state: str, event: Event) -> tuple[Status, tuple[Effect, ...]]:
    """The new state and the effects, in order; InvalidTransition when the table has no such row."""
    found = TABLE.get((state, event))  # str and StrEnum keys hash alike
    if found is None:
        raise InvalidTransition(str(state), Event(event))
    return found


def allowed(state: str, event: Event) -> bool:
    return (state, event) in TABLE


def mermaid() -> str:
    """The table as a Mermaid state diagram (one arrow per state pair, its events as the label)."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for (state, event), (target, _effects) in TABLE.items():
        arrows.setdefault((state, str(target)), []).append(str(event))
    lines = ["stateDiagram-v2", f"    [*] --> {NEW}"]
    order = {name: n for n, name in enumerate(STATES)}
    for (state, target), events in sorted(arrows.items(), key=lambda item: (order[item[0][0]], order[item[0][1]])):
        label = ", ".join(sorted(set(events), key=events.index))
        lines.append(f"    {state} --> {target}: {label}")
    lines += [f"    {state} --> [*]" for state in STATES if state in FINAL]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m deskbridge.lifecycle: the diagram for the README
    print(mermaid(), end="")
