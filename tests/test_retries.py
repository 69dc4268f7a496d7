"""Nothing lost: durable retries through Azurite's queues, poison handling and operator replay.

Each fault is driven through the HTTP function, then the queue function with
the messages Azurite delivers when they come due (the tests' schedule is
"1,1": one second between attempts, three attempts in all).
"""

import json
import logging
import socket
import threading
from collections import Counter

import pytest
from azure.functions.queue import QueueMessage
from conftest import fixture, functions

from deskbridge.retries import next_delay, scheduled_age
from devtools.azurite import Azurite
from devtools.stack import BRIDGE_APP_ID

BODY = fixture("syskit_jira_custom_body.json")


def accept(bridge, body=BODY):
    return bridge.http("provision", body)


def unavailable(bridge, count=1, **kwargs):
    """Syskit Point answers 503 (it did not act) to the next POSTs, and the callback does not retry them."""
    bridge.configure(POINT_RETRY_BUDGET_SECONDS="0.1")
    bridge.stack.point.fail_next(count, 503, method="POST", **kwargs)


def drain(bridge):
    return bridge.drain("BRIDGE_RETRY_QUEUE", "retry")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the schedule ----------------------------------------------------------------

def test_schedule_grows_then_repeats_until_the_age_is_reached():
    schedule = (60, 300, 1800, 7200, 21600)
    delays, age, attempts = [], 0, 1
    while (delay := next_delay(attempts, age, schedule, 86400)) is not None:
        delays.append(delay)
        age += delay
        attempts += 1
    assert delays == [60, 300, 1800, 7200, 21600, 21600, 21600, 21600]
    assert age >= 86400 and age - delays[-1] < 86400
    assert scheduled_age(6, schedule) == 60 + 300 + 1800 + 7200 + 21600
    assert next_delay(1, 0, schedule, 86400, retry_after=120) == 120  # Retry-After only lengthens
    assert next_delay(1, 0, schedule, 86400, retry_after=5) == 60


def test_delays_requested_from_the_queue_follow_the_configured_schedule(bridge):
    bridge.configure(BRIDGE_RETRY_SCHEDULE="1,2", BRIDGE_RETRY_MAX_AGE_SECONDS="0")
    unavailable(bridge, 10)
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued") and body["nextAttemptAt"]
    # In Azurite, and not visible before its delay: 1 s, then 2 s (a lower bound: a loaded machine only adds).
    assert bridge.delayed("BRIDGE_RETRY_QUEUE") == 1
    first, waited_first = bridge.next_due("BRIDGE_RETRY_QUEUE")
    token = bridge.record("provision-jira", "MKT-7").attempt_token
    bridge.handle("BRIDGE_RETRY_QUEUE", "retry", first)  # attempt 2: 503 again
    assert bridge.delayed("BRIDGE_RETRY_QUEUE") == 1
    second, waited_second = bridge.next_due("BRIDGE_RETRY_QUEUE")
    bridge.handle("BRIDGE_RETRY_QUEUE", "retry", second)  # attempt 3: 503, and the schedule is over
    assert waited_first > 0.5 and waited_second > 1.5, (waited_first, waited_second)
    assert bridge.queue_count(bridge.settings["BRIDGE_RETRY_QUEUE"]) == 0
    assert json.loads(first.content) == {"v": 2, "source": "provision-jira", "ticket": "MKT-7", "token": token}
    assert json.loads(second.content)["token"] != token  # each message its own attempt token: the chain's current one
    assert bridge.record("provision-jira", "MKT-7").status == "failed"


# -- the fault matrix -------------------------------------------------------------

def test_429_with_retry_after_is_queued_no_sooner_than_asked(bridge):
    bridge.stack.point.fail_next(1, 429, method="POST", retry_after=3)
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    assert bridge.delayed("BRIDGE_RETRY_QUEUE") == 1  # waiting in Azurite, not visible yet
    message, waited = bridge.next_due("BRIDGE_RETRY_QUEUE")
    assert waited > 2.5, waited  # Retry-After: 3, never sooner
    bridge.handle("BRIDGE_RETRY_QUEUE", "retry", message)
    drain(bridge)
    record = bridge.record("provision-jira", "MKT-7")
    assert (record.status, record.attempts) == ("submitted", 2)
    assert len(bridge.stack.point.provision_calls()) == 2


@pytest.mark.parametrize("status_code", [503, 408])
def test_answers_that_prove_nothing_was_done_are_queued_then_submitted_once(bridge, status_code):
    # A Retry-After past the in-callback budget: the callback answers at once.
    bridge.stack.point.fail_next(1, status_code, method="POST", retry_after=1)
    bridge.configure(POINT_RETRY_BUDGET_SECONDS="0.5")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    assert bridge.record("provision-jira", "MKT-7").last_error.startswith(f"Syskit Point answered {status_code}")
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert len(bridge.stack.point.provision_calls()) == 2
    assert len(bridge.stack.point.provisioned) == 1


@pytest.mark.parametrize("status_code", [500, 502, 504])
def test_answers_after_which_point_may_have_acted_are_uncertain_and_never_resent(bridge, status_code):
    bridge.stack.point.fail_next(1, status_code, method="POST")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "uncertain")
    record = bridge.record("provision-jira", "MKT-7")
    assert record.status == "uncertain" and f"answered {status_code}" in record.last_error
    assert "not re-sent" in record.last_error
    assert bridge.queue_count(bridge.settings["BRIDGE_RETRY_QUEUE"]) == 0 and drain(bridge) == 0
    assert len(bridge.stack.point.provision_calls()) == 1  # not within the budget either


def test_connection_refused_is_queued_and_retried(bridge):
    point_url = bridge.settings["POINT_URL"]
    bridge.configure(POINT_URL=f"https://127.0.0.1:{closed_port()}", POINT_RETRY_BUDGET_SECONDS="0.3")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    assert "unreachable" in bridge.record("provision-jira", "MKT-7").last_error
    bridge.configure(POINT_URL=point_url)  # Syskit Point is back
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert len(bridge.stack.point.provision_calls()) == 1


def test_read_timeout_after_sending_waits_for_an_operator(bridge):
    bridge.stack.point.hang_next(1, 3.0, method="POST")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "uncertain")
    assert bridge.queue_count(bridge.settings["BRIDGE_RETRY_QUEUE"]) == 0
    assert drain(bridge) == 0
    assert len(bridge.stack.point.provision_calls()) == 1
    assert bridge.record("provision-jira", "MKT-7").status == "uncertain"


def test_key_vault_down_is_queued(bridge):
    bridge.stack.vault.fail_next(50, 503)
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    assert "Key Vault" in bridge.record("provision-jira", "MKT-7").last_error
    assert bridge.stack.point.calls == []
    bridge.stack.vault.clear_faults()
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert len(bridge.stack.point.provision_calls()) == 1


def test_entra_id_down_is_queued(bridge):
    bridge.runtime.secrets.value("point-client-secret")  # the vault token is already held
    bridge.stack.entra.fail_next(50, 503, path_prefix=f"/{bridge.settings['POINT_TENANT_ID']}/oauth2")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued"), body
    assert "Entra ID" in bridge.record("provision-jira", "MKT-7").last_error
    bridge.stack.entra.clear_faults()
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert len(bridge.stack.point.provision_calls()) == 1


def test_azurite_restarted_between_accept_and_retry(bridge, tmp_path):
    storage = Azurite(tmp_path / "azurite.log", location=tmp_path / "data").start()
    try:
        bridge.configure(AzureWebJobsStorage=storage.connection_string, POINT_RETRY_BUDGET_SECONDS="0.3")
        bridge.stack.point.fail_next(1, 503, method="POST", retry_after=1)
        assert accept(bridge)[1]["status"] == "queued"
        storage.restart()
        bridge.configure()  # a new worker process after the restart
        drain(bridge)
        assert bridge.record("provision-jira", "MKT-7").status == "submitted"
        assert len(bridge.stack.point.provision_calls()) == 2
    finally:
        storage.stop()


def test_missing_consent_stays_on_the_schedule_and_says_what_to_fix(bridge, caplog):
    caplog.set_level(logging.ERROR, logger="deskbridge")
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles = set()
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    record = bridge.record("provision-jira", "MKT-7")
    assert "grant admin consent for Point.Provisioning" in record.last_error and record.point_status == 403
    assert any("grant admin consent" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    bridge.stack.entra.apps[BRIDGE_APP_ID].roles = {"Point.Provisioning"}  # an admin consents
    drain(bridge)  # the token issued before the consent is replaced by the bridge itself
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"


def test_wrong_secret_in_the_vault_says_so_and_recovers_when_fixed(bridge):
    bridge.stack.vault.set_secret("point-client-secret", "not-the-secret")
    status, body = accept(bridge)
    assert (status, body["status"]) == (202, "queued")
    assert "client secret is wrong" in bridge.record("provision-jira", "MKT-7").last_error
    bridge.stack.vault.set_secret("point-client-secret", bridge.stack.client_secret)
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"


def test_last_attempt_fails_the_request_and_poisons_its_message(bridge, caplog):
    unavailable(bridge, 10)
    accept(bridge)
    drain(bridge)
    record = bridge.record("provision-jira", "MKT-7")
    assert (record.status, record.attempts) == ("failed", 3)
    assert "503" in record.last_error
    assert len(bridge.stack.point.provision_calls()) == 3
    poison = bridge.messages("BRIDGE_RETRY_POISON_QUEUE")
    expected = {"v": 2, "source": "provision-jira", "ticket": "MKT-7", "token": record.attempt_token}
    assert [json.loads(m) for m in poison] == [expected]
    assert bridge.drain("BRIDGE_RETRY_POISON_QUEUE", "retry_poisoned") == 1
    status, body = bridge.status("provision-jira", "MKT-7")
    assert (body["status"], body["attempts"], body["nextAttemptAt"]) == ("failed", 3, None)


def test_poison_queue_function_fails_a_request_the_host_gave_up_on(bridge):
    unavailable(bridge)
    accept(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "queued"
    message, _ = bridge.next_due("BRIDGE_RETRY_QUEUE")  # as the host does after the last failed delivery:
    bridge._queue_client(bridge.settings["BRIDGE_RETRY_POISON_QUEUE"]).send_message(message.content)
    bridge._queue_client(bridge.settings["BRIDGE_RETRY_QUEUE"]).delete_message(message)
    bridge.drain("BRIDGE_RETRY_POISON_QUEUE", "retry_poisoned")
    assert bridge.record("provision-jira", "MKT-7").status == "failed"


def test_two_messages_for_one_request_make_one_call(bridge):
    unavailable(bridge)
    accept(bridge)
    copy = bridge.waiting_retry("provision-jira", "MKT-7")
    bridge._queue_client(bridge.settings["BRIDGE_RETRY_QUEUE"]).send_message(copy, visibility_timeout=1)  # a duplicate
    drain(bridge)
    assert len(bridge.stack.point.provision_calls()) == 2
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"


def test_copies_of_one_due_retry_handed_over_at_once_make_one_call(bridge, caplog):
    """The ETag claim, raced for real: six copies of the same due message reach six workers at the same moment."""
    caplog.set_level(logging.INFO, logger="deskbridge")
    unavailable(bridge)
    assert accept(bridge)[1]["status"] == "queued"
    text = bridge.waiting_retry("provision-jira", "MKT-7")
    client = bridge._queue_client(bridge.settings["BRIDGE_RETRY_QUEUE"])
    client.clear_messages()
    copies = 6
    for _ in range(copies):  # what an at-least-once queue may hand out
        client.send_message(text)
    messages = []
    while len(messages) < copies:
        messages += list(client.receive_messages(max_messages=copies, visibility_timeout=60))
    bridge.stack.point.hang_next(1, 0.5, method="POST")  # the winner's call takes a while: the others come meanwhile
    posts_before = len(bridge.stack.point.provision_calls())
    retry = functions()["retry"].get_user_function()
    start = threading.Barrier(copies)
    failures: list[str] = []  # collected here, asserted below in the test's own thread

    def deliver(message):
        incoming = QueueMessage(id=message.id, body=message.content.encode("utf-8"),
                                dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
        try:
            start.wait(timeout=10)
            retry(incoming)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=deliver, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(bridge.stack.point.provision_calls()) - posts_before == 1  # one claim won, one call
    record = bridge.record("provision-jira", "MKT-7")
    assert record.status == "submitted" and record.history.count("retry_due>pending") == 1, record.history
    lines = [r for r in caplog.records if getattr(r, "bridge_event", "") == "retry"]
    turned_away = [r.getMessage() for r in lines if r.outcome in ("skipped", "waiting")]
    assert len(turned_away) == copies - 1, turned_away
    # Each of them raced the claim (lost the ETag, or found it pending): none came after the outcome was written.
    assert not any("already" in line for line in turned_away), turned_away


def test_status_route_shows_attempts_and_next_attempt(bridge):
    unavailable(bridge)
    accept(bridge)
    status, body = bridge.status("provision-jira", "MKT-7")
    assert status == 200 and body["status"] == "queued" and body["attempts"] == 1
    assert body["nextAttemptAt"].endswith("Z") and "503" in body["lastError"]


def test_retry_message_carries_only_the_ledger_key_and_the_attempt_token(bridge):
    unavailable(bridge)
    accept(bridge)
    assert bridge.queue_count(bridge.settings["BRIDGE_RETRY_QUEUE"]) == 1
    message, _ = bridge.next_due("BRIDGE_RETRY_QUEUE")
    token = bridge.record("provision-jira", "MKT-7").attempt_token
    assert len(token) == 12
    assert json.loads(message.content) == {"v": 2, "source": "provision-jira", "ticket": "MKT-7", "token": token}


# -- operator replay ---------------------------------------------------------------

def test_replay_of_a_failed_request(bridge, capsys):
    from deskbridge import cli

    unavailable(bridge, 10)
    accept(bridge)
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "failed"
    assert cli.main(["list", "--status", "failed"]) == 0
    table = capsys.readouterr().out
    assert "MKT-7" in table and "failed" in table and "ATTEMPTS" in table
    bridge.stack.point.clear_faults()
    assert cli.main(["replay", "provision-jira", "MKT-7", "--yes"]) == 0
    assert "queued" in capsys.readouterr().out
    drain(bridge)
    record = bridge.record("provision-jira", "MKT-7")
    assert (record.status, record.attempts) == ("submitted", 4)
    assert len(bridge.stack.point.provisioned) == 1


def test_replay_refuses_a_submitted_request_and_asks_without_yes(bridge, capsys):
    from deskbridge import cli

    accept(bridge)
    assert cli.main(["replay", "provision-jira", "MKT-7", "--yes"]) == 1
    assert "only failed, uncertain, rejected, point_failed or queued" in capsys.readouterr().err
    assert cli.main(["replay", "jira", "NOPE-1", "--yes"]) == 1
    assert cli.main(["replay", "provision-jira", "MKT-7"]) == 1  # no terminal to confirm in
    assert "add --yes" in capsys.readouterr().err
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert cli.main(["list", "--json", "--all"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["ticket"], listed["status"], listed["attempts"]) == ("MKT-7", "submitted", 1)


def test_replay_of_an_uncertain_request_after_checking_point(bridge):
    from deskbridge import operator

    bridge.stack.point.drop_next(1, method="POST")
    assert accept(bridge)[1]["status"] == "uncertain"
    operator.replay(bridge.runtime, "provision-jira", "MKT-7")
    drain(bridge)
    record = bridge.record("provision-jira", "MKT-7")
    assert record.status == "submitted"
    assert len(bridge.stack.point.provision_calls()) == 2
    assert record.history == ["accepted>pending", "no_answer>uncertain", "replay>queued", "retry_due>pending",
                              "answered_2xx>submitted"]


def test_replay_of_a_rejected_request_a_person_decided(bridge):
    from deskbridge import operator

    bridge.stack.point.fail_next(1, 422, method="POST", body={"message": "owner not licensed"})
    assert accept(bridge)[0] == 422
    assert bridge.record("provision-jira", "MKT-7").status == "rejected"
    operator.replay(bridge.runtime, "provision-jira", "MKT-7")  # the owner got a licence meanwhile
    drain(bridge)
    assert bridge.record("provision-jira", "MKT-7").status == "submitted"
    assert len(bridge.stack.point.provisioned) == 1


# -- soak -------------------------------------------------------------------------

def test_soak_300_approvals_with_transient_failures_and_duplicates(bridge):
    bridge.configure(BRIDGE_RETRY_SCHEDULE="1,1,1,1", POINT_RETRY_BUDGET_SECONDS="0.3")
    point = bridge.stack.point
    point.flaky(0.3, (500, 502, 503, 429), seed=20261128, method="POST")
    tickets = [f"SOAK-{n}" for n in range(300)]
    sends = tickets + tickets[::10]  # 10% sent twice
    answers: Counter = Counter()
    wrong: list[tuple[int, dict]] = []  # answers a desk must never get; asserted in the test's own thread
    failures: list[str] = []
    lock = threading.Lock()

    def send(batch):
        try:
            for ticket in batch:
                status, body = bridge.http("provision", BODY | {"displayName": f"Soak {ticket}",
                                                                "comment": f"Generated by JIRA Issue {ticket}"})
                with lock:
                    answers[body["status"]] += 1
                    if status >= 500 and body["status"] != "failed":
                        wrong.append((status, body))
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=send, args=(sends[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == [] and wrong == [], (failures, wrong[:3])
    assert sum(answers.values()) == len(sends)
    drain(bridge)

    records = {r.ticket: r for r in bridge.runtime.ledger.by_status(None)}
    assert set(records) == set(tickets)  # none lost
    final = Counter(r.status for r in records.values())
    # 500 and 502 may come after Syskit Point acted: those are uncertain, and never sent again.
    assert set(final) <= {"submitted", "failed", "uncertain"}, final
    accepted = Counter(p.body["comment"].rsplit(" ", 1)[1] for p in point.provisioned)
    assert all(count == 1 for count in accepted.values())  # never twice
    assert set(accepted) == {t for t, r in records.items() if r.status == "submitted"}
    calls = Counter(c.json()["comment"].rsplit(" ", 1)[1] for c in point.provision_calls())
    for ticket, record in records.items():
        assert calls[ticket] == record.sends, (ticket, record.history)  # every POST accounted for
        if record.status == "uncertain":
            assert record.history[-1] == "answered_5xx>uncertain", record.history
    figures = {"approvals": len(sends), "distinct": len(tickets), "point_calls": len(point.provision_calls()),
               "accepted_by_point": len(point.provisioned), "final": dict(final), "answers": dict(answers)}
    print("soak", json.dumps(figures))


def test_a_retry_checks_the_stored_body_again(bridge):
    unavailable(bridge)
    accept(bridge)
    bridge.configure(POINT_TEMPLATE_IDS="8")  # template 7 is no longer allowed when the retry comes
    drain(bridge)
    record = bridge.record("provision-jira", "MKT-7")
    assert record.status == "rejected" and "no longer valid" in record.last_error and "template 7" in record.last_error
    assert len(bridge.stack.point.provision_calls()) == 1
