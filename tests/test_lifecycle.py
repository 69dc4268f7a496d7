"""The lifecycle table: pure, complete, and the same as the README's diagram."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deskbridge.lifecycle import FINAL, NEW, STATES, TABLE, Effect, Event, InvalidTransition, mermaid, transition
from deskbridge.model import Status

ROOT = Path(__file__).resolve().parent.parent
RETRY = {Effect.RETRY_LATER, Effect.RETRY_NOW}


def test_the_readme_shows_the_table_as_it_is():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- lifecycle:begin -->\n```mermaid\n(.*?)```\n<!-- lifecycle:end -->", readme, re.S)
    assert shown is not None, "the README lost its lifecycle diagram"
    assert shown.group(1) == mermaid(), "regenerate it: python -m deskbridge.lifecycle"


def test_every_stored_status_is_a_state_and_every_state_is_reachable():
    stored = {str(s) for s in Status} - {Status.IGNORED}
    assert stored | {NEW} == set(STATES)
    reached, frontier = {NEW}, [NEW]
    while frontier:
        state = frontier.pop()
        for (source, _), (target, _) in TABLE.items():
            if source == state and target not in reached:
                reached.add(str(target))
                frontier.append(str(target))
    assert reached == set(STATES)


def test_only_completed_is_final_and_nothing_else_is_a_dead_end():
    leaving = {source for source, _ in TABLE}
    assert FINAL == {Status.COMPLETED}
    assert {event for (state, event) in TABLE if state == Status.FAILED_IN_POINT} == {Event.REPLAY}
    assert not FINAL & leaving
    assert set(STATES) - set(FINAL) <= leaving


@pytest.mark.parametrize("event", [Event.ANSWERED_5XX, Event.NO_ANSWER, Event.STALE_CLAIM, Event.POISONED])
def test_what_may_have_reached_point_is_uncertain_and_never_resent(event):
    state, effects = transition(Status.PENDING, event)
    assert state == Status.UNCERTAIN and not RETRY & set(effects) and Effect.CALL_POINT not in effects


def test_uncertain_is_sent_again_only_by_a_person_or_the_opt_in_resend():
    leaving = {event for (state, event) in TABLE if state == Status.UNCERTAIN}
    resending = {e for e in leaving if RETRY & set(TABLE[(Status.UNCERTAIN, e)][1])}
    assert resending == {Event.REPLAY, Event.RESEND_UNCERTAIN}
    for event in (Event.EVENT_STARTED, Event.EVENT_COMPLETED):  # Syskit Point's events still settle it
        assert transition(Status.UNCERTAIN, event)[0] in (Status.PROVISIONING, Status.COMPLETED)


def test_a_call_is_made_only_from_pending_and_every_retry_lands_in_queued():
    for (state, event), (target, effects) in TABLE.items():
        if Effect.CALL_POINT in effects:
            assert target == Status.PENDING, (state, event)
        if RETRY & set(effects):
            assert target == Status.QUEUED, (state, event)
        if target == Status.QUEUED:
            assert RETRY & set(effects), (state, event)  # a queued request always has its message coming


def test_replay_takes_what_a_person_may_decide_on():
    replayable = {state for (state, event) in TABLE if event == Event.REPLAY}
    assert replayable == {Status.FAILED, Status.UNCERTAIN, Status.QUEUED, Status.REJECTED, Status.FAILED_IN_POINT}
    for state in replayable:
        assert Effect.RESTART_SCHEDULE in transition(state, Event.REPLAY)[1]


def test_a_status_answer_settles_as_the_event_would_and_finds_an_uncertain_request():
    for state in (Status.SUBMITTED, Status.PROVISIONING, Status.UNCERTAIN):
        assert transition(state, Event.POLLED_COMPLETED) == transition(Status.SUBMITTED, Event.EVENT_COMPLETED)
        assert transition(state, Event.POLLED_FAILED) == transition(Status.SUBMITTED, Event.EVENT_FAILED)
        assert transition(state, Event.POLLED_REFUSED) == (Status.REJECTED, (Effect.NOTIFY_DESK,))
    assert transition(Status.UNCERTAIN, Event.POLLED_RUNNING) == (Status.SUBMITTED, ())
    for state in (Status.PENDING, Status.QUEUED, Status.COMPLETED, Status.FAILED_IN_POINT, Status.REJECTED):
        with pytest.raises(InvalidTransition):  # never asked about: no request id yet, or settled already
            transition(state, Event.POLLED_COMPLETED)


def test_an_event_that_means_nothing_here_is_refused():
    with pytest.raises(InvalidTransition, match="does not apply to a completed request"):
        transition(Status.COMPLETED, Event.ANSWERED_2XX)
    with pytest.raises(InvalidTransition):
        transition(Status.SUBMITTED, Event.RETRY_DUE)  # a late retry message after the request went through
    with pytest.raises(InvalidTransition):
        transition(Status.PROVISIONING, Event.EVENT_STARTED)
