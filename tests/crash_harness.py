"""Crash injection at the one place every outbound call passes, and recovery the way production does it.

:class:`Outbound` wraps ``requests.adapters.HTTPAdapter.send``: the bridge's
own ``requests`` sessions (Syskit Point, Jira, ServiceNow, callbacks),
azure-core's transport (Table and Queue storage, Key Vault) and msal through
azure-identity (Entra ID) all send there. While a flow runs it numbers the
calls and can make call *i* fail in one of two ways:

- ``never_sent``: it raises before the request leaves, as a refused
  connection does (the code sees a connection error that provably sent
  nothing);
- ``crash``: the request goes out and the remote acts on it, then the process
  "dies": :class:`Crash`, a BaseException that no ``except Exception`` in the
  bridge or the SDKs catches, unwinds the flow.

:func:`recover` then does what production does after such a failure: a new
worker process; the desk (or Syskit Point) sends its callback again when it
got no answer or a 5xx; the host redelivers a message that was not completed
(dequeue count + 1, after its visibility timeout); due messages run; the
reconciler sweeps with the clock moved past every threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.functions.queue import QueueMessage
from conftest import functions
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

NEVER_SENT, CRASH = "never_sent", "crash"
KINDS = (NEVER_SENT, CRASH)


class Crash(BaseException):  # noqa: N818 - what it is, not an error the code may handle
    """The process died here."""


class Outbound:
    """Every outbound HTTP call of the flow running in this thread: recorded, and one of them failed on purpose."""

    def __init__(self, names_by_port: dict[int, str]) -> None:
        self._names = names_by_port
        self._local = threading.local()
        self._original: Any = None
        self._live: dict[str, dict[str, str]] = {}  # queue name -> message id -> text: sent, not yet deleted
        self._live_lock = threading.Lock()

    def install(self, monkeypatch: Any) -> Outbound:
        self._original = HTTPAdapter.send
        outbound = self

        def send(adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            return outbound._send(adapter, request, *args, **kwargs)

        monkeypatch.setattr(HTTPAdapter, "send", send)
        return self

    def label(self, request: Any) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(request.url)
        service = self._names.get(parts.port or 0, f"port {parts.port}")
        path = parts.path
        if service in ("table", "queue"):  # /devstoreaccount1/<per-test name>(keys)/messages: the kind of name
            name, _, rest = path.split("/", 2)[-1].partition("/")
            name = name.split("(")[0]
            kind = next((k for k in ("ledger", "deliveries", "retries", "desk") if name.startswith(k)), name)
            path = f"/{kind}{'-poison' if name.endswith('-poison') else ''}" + (f"/{rest}" if rest else "")
        if service == "point" and path.startswith("/v1.0/provision/requests/"):  # each run has its own request id
            path = "/v1.0/provision/requests/{id}"
        return f"{service} {request.method} {path}"

    @contextmanager
    def watch(
        self, fail_at: int | None = None, kind: str = "", fail_when: Callable[[str], bool] | None = None,
        times: int = 1,
    ) -> Iterator[list[str]]:
        """Record the calls made in this thread; make call number ``fail_at`` (or the first ``times`` calls
        whose label ``fail_when`` picks) fail the ``kind`` way."""
        calls: list[str] = []
        self._local.state = [calls, fail_at, kind, fail_when, times]
        try:
            yield calls
        finally:
            self._local.state = None

    def waiting(self, queue: str) -> list[str]:
        """The text of every message on a queue that was sent and not deleted since, delayed ones too (a
        message not visible yet cannot be read back from the service, so the recorder keeps what it saw)."""
        with self._live_lock:
            return list(self._live.get(queue, {}).values())

    def _forward(self, adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = self._original(adapter, request, *args, **kwargs)
        if self._names.get(_port(request.url)) == "queue":
            self._track(request, response)
        return response

    def _track(self, request: Any, response: Any) -> None:
        """Follow the queue calls that add or remove messages (send, delete one, clear), whoever makes them."""
        import base64
        import re
        from urllib.parse import unquote, urlsplit

        if not 200 <= response.status_code < 300:
            return
        parts = urlsplit(request.url).path.split("/")  # ['', account, queue, 'messages', id?]
        if len(parts) < 4 or parts[3] != "messages":
            return
        queue = parts[2]
        with self._live_lock:
            live = self._live.setdefault(queue, {})
            if request.method == "POST":
                body = request.body.decode("utf-8") if isinstance(request.body, bytes) else str(request.body)
                text = re.search(r"<MessageText>(.*?)</MessageText>", body, re.S)
                found = re.search(r"<MessageId>(.*?)</MessageId>", response.content.decode("utf-8"))
                if text and found:
                    live[found.group(1)] = base64.b64decode(text.group(1)).decode("utf-8")
            elif request.method == "DELETE":
                if len(parts) > 4 and parts[4]:
                    live.pop(unquote(parts[4]), None)
                else:
                    live.clear()

    def _send(self, adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        state = getattr(self._local, "state", None)
        if state is None:
            return self._forward(adapter, request, *args, **kwargs)
        calls, fail_at, kind, fail_when, times = state
        index = len(calls)
        calls.append(self.label(request))
        picked = index == fail_at or (fail_when is not None and times > 0 and fail_when(calls[index]))
        if not picked:
            return self._forward(adapter, request, *args, **kwargs)
        if fail_when is not None:
            state[4] = times - 1
        if kind == NEVER_SENT:
            refused = NewConnectionError(None, "injected: connection refused before anything was sent")
            raise requests.exceptions.ConnectionError(MaxRetryError(None, request.url, refused), request=request)
        response = self._forward(adapter, request, *args, **kwargs)
        response.content  # noqa: B018 - the remote has acted and answered in full
        raise Crash(f"the process died after call {index}: {calls[index]}")


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or 0


def install(bridge: Any, monkeypatch: Any) -> Outbound:
    """The wrapper for this test, naming each stand-in and Azurite service by its port."""
    stack = bridge.stack
    ports = {stack.point.port: "point", stack.entra.port: "entra", stack.vault.port: "keyvault",
             stack.jira.port: "jira", stack.servicenow.port: "servicenow", stack.callbacks.port: "callback",
             stack.azurite.ports["table"]: "table", stack.azurite.ports["queue"]: "queue"}
    return Outbound(ports).install(monkeypatch)


@dataclass
class Cell:
    """One run of a flow: what the production recovery needs to know about how it ended."""

    bridge: Any
    flow: str = ""
    crashed: bool = False
    raised: bool = False
    http: tuple[str, bytes, dict[str, str]] | None = None  # a call the desk or Syskit Point sends again
    answer: tuple[int, Any] | None = None
    message: tuple[str, str, Any] | None = None  # (queue setting, function, message) taken from Azurite
    retry_command: Callable[[], Any] | None = None  # what an operator runs again after a failed command
    tickets: list[tuple[str, str]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    recovered: bool = False  # recover() ran: the clock is past every threshold, the reconciler has swept


def run_guarded(cell: Cell, action: Callable[[], Any]) -> Any:
    """Run one production step; a crash or an exception is what the cell records, not a test error."""
    try:
        return action()
    except Crash:
        cell.crashed = True
    except Exception as exc:  # the function failed (the host answers 500 or keeps the message)
        cell.raised = True
        cell.notes["exception"] = f"{type(exc).__name__}: {exc}"[:300]
    return None


# -- queues, as the Functions host runs them ---------------------------------------------


def queue_client(bridge: Any, setting: str) -> Any:
    return bridge._queue_client(bridge.settings[setting])


def take(bridge: Any, setting: str) -> Any:
    """The next visible message of a queue (the host's receive), or None."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        batch = list(queue_client(bridge, setting).receive_messages(max_messages=1, visibility_timeout=120))
    except ResourceNotFoundError:
        return None
    return batch[0] if batch else None


def call_queue_function(function: str, message: Any) -> None:
    incoming = QueueMessage(id=message.id, body=message.content.encode("utf-8"),
                            dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
    functions()[function].get_user_function()(incoming)


def finish(bridge: Any, setting: str, message: Any, ok: bool) -> None:
    """Completed: the host deletes it. Failed: visible again after the visibility timeout (moved ahead here)."""
    client = queue_client(bridge, setting)
    if ok:
        client.delete_message(message)
    else:
        client.update_message(message, visibility_timeout=0)


POISON = {"BRIDGE_RETRY_QUEUE": ("BRIDGE_RETRY_POISON_QUEUE", "retry_poisoned"),
          "BRIDGE_DESK_QUEUE": ("BRIDGE_DESK_POISON_QUEUE", "desk_update_poisoned")}
FUNCTION = {"BRIDGE_RETRY_QUEUE": "retry", "BRIDGE_DESK_QUEUE": "desk_update",
            "BRIDGE_RETRY_POISON_QUEUE": "retry_poisoned", "BRIDGE_DESK_POISON_QUEUE": "desk_update_poisoned"}
MAX_DEQUEUE = 5  # host.json extensions.queues.maxDequeueCount


def run_due(bridge: Any, rounds: int = 40, strict: bool = False) -> int:
    """Run every message that is due now, as the host would (retry after a failure, poison after five).
    ``strict``: a function that raises fails the caller instead (the upgrade test forbids any)."""
    handled = 0
    for _ in range(rounds):
        progressed = False
        for setting, function in FUNCTION.items():
            message = take(bridge, setting)
            if message is None:
                continue
            progressed = True
            handled += 1
            try:
                call_queue_function(function, message)
                ok = True
            except Exception:
                if strict:
                    raise
                ok = False
            if not ok and setting in POISON and message.dequeue_count >= MAX_DEQUEUE:
                poison_setting, _ = POISON[setting]
                queue_client(bridge, poison_setting).send_message(message.content)
                ok = True  # the host moved it to the poison queue
            if not ok:
                bridge.clock.advance(30)  # host.json visibilityTimeout before the next try
            finish(bridge, setting, message, ok)
        if not progressed:
            return handled
    raise AssertionError(f"messages kept coming for {rounds} rounds")


def past_every_threshold(bridge: Any) -> float:
    """Seconds that take the bridge past its stale limit, grace period and delivery retention."""
    s = bridge.runtime.settings
    return max(s.pending_stale, s.queue_grace, s.delivery_retention) + 3600


def recover(cell: Cell) -> None:
    bridge = cell.bridge
    cell.recovered = True
    bridge.restart()  # whatever happened, a new worker process handles what follows
    if cell.http is not None:  # a caller that got no answer, or a 5xx, sends the same call again
        name, data, headers = cell.http
        for _ in range(3):
            status = cell.answer[0] if cell.answer else None
            if not (cell.crashed or cell.raised) and status is not None and status < 500:
                break
            cell.crashed = cell.raised = False
            cell.answer = bridge.http(name, data, headers=headers)
    if cell.message is not None and (cell.crashed or cell.raised):
        setting, function, message = cell.message  # not completed: the host delivers it again
        bridge.clock.advance(30)
        finish(bridge, setting, message, ok=False)
        again = take(bridge, setting)
        assert again is not None and again.dequeue_count == message.dequeue_count + 1, "redelivery"
        try:
            call_queue_function(function, again)
            finish(bridge, setting, again, ok=True)
        except Exception:
            finish(bridge, setting, again, ok=False)
    if cell.retry_command is not None and (cell.crashed or cell.raised):
        try:
            cell.retry_command()
        except Exception as exc:  # the operator reads the error; nothing else to do
            cell.notes["retry_command"] = f"{type(exc).__name__}: {exc}"[:200]
    run_due(bridge)
    for _ in range(3):  # the reconciler's timer, with the clock past every threshold, then what it queued
        bridge.clock.advance(past_every_threshold(bridge))
        functions()["reconcile"].get_user_function()(None)
        if not run_due(bridge):
            break


# -- what must hold after recovery ----------------------------------------------------------------


SETTLED = {"submitted", "completed", "point_failed", "rejected"}


def resends_after_uncertain(history: list[str]) -> int:
    """How often the record went from uncertain back to an attempt (a replay, or the optional re-send)."""
    state, count = "new", 0
    for entry in history:
        event, _, target = entry.partition(">")
        if state == "uncertain" and target.startswith("queued"):
            count += 1
        state = target.split(" ")[0]
    return count


def check(cell: Cell) -> list[str]:
    """What is wrong with how the cell ended (empty: nothing)."""
    from deskbridge.desks import step_marker
    from deskbridge.retries import QueueKey
    from deskbridge.writeback import round_label

    bridge = cell.bridge
    stack = bridge.stack
    problems: list[str] = []
    outbound: Outbound = cell.notes["outbound"]
    retry_waiting = [QueueKey.decode(text) for text in outbound.waiting(bridge.settings["BRIDGE_RETRY_QUEUE"])]
    desk_waiting = bridge.queue_count(bridge.settings["BRIDGE_DESK_QUEUE"])
    for source, ticket in cell.tickets:
        record = bridge.record(source, ticket)
        where = f"{source}/{ticket}"
        if record is None:
            problems.append(f"{where}: lost (no record)")
            continue
        status = record.status
        # Its own message, of its current chain: another ticket's (or an older chain's) does not count.
        own_message = any((key.source, key.ticket) == (source, ticket)
                          and (not record.attempt_token or key.token == record.attempt_token) for key in retry_waiting)
        if status == "queued":
            if not own_message:
                problems.append(f"{where}: queued with no message of its own on the retry queue "
                                f"(token {record.attempt_token or '-'}; waiting: {retry_waiting})")
        elif status == "pending" and not cell.recovered:  # a redelivery found its claim pending and waits
            if not own_message:
                problems.append(f"{where}: pending with no message of its own to look at it again")
        elif status in ("uncertain", "failed"):
            if not record.last_error:
                problems.append(f"{where}: {status} without a reason")
        elif status not in SETTLED:
            problems.append(f"{where}: ends {status} ({record.history})")
        # POSTs Syskit Point acted on (a 503 or a refused connection it never saw do not count).
        acted = [p for p in stack.point.provisioned if ticket in str(p.body.get("comment", ""))]
        allowed = 1 + resends_after_uncertain(record.history)
        if len(acted) > allowed:
            problems.append(f"{where}: Syskit Point acted on {len(acted)} POSTs, {allowed} allowed ({record.history})")
        if record.desk_owed and desk_waiting == 0:
            problems.append(f"{where}: owes {sorted(record.desk_owed)} with no message on the desk queue")
        # An update's label is its name, with the round after a replay of a point_failed request ("completed#1").
        labels = {u.split(":")[0] for u in record.desk_updates} | {round_label(record, u) for u in record.desk_owed}
        for label in labels:
            update, _, round_ = label.partition("#")
            for step in ("jira-comment", "jira-transition", "servicenow"):
                marker = step_marker(source, ticket, label, f"{label}:{step}")
                writes = desk_writes(stack, step, marker)
                marked = f"{label}:{step}" in record.desk_updates
                if writes > 1 or (marked and writes != 1):
                    problems.append(f"{where}: {label}:{step} written {writes} times (marked done: {marked})")
            if record.reply_to.get("callbackUrl"):
                from dataclasses import replace

                from deskbridge.writeback import callback_id

                this_round = callback_id(replace(record, outcome_round=int(round_ or 0)), update)
                every_round = {callback_id(replace(record, outcome_round=n), update)
                               for n in range(record.outcome_round + 1)}
                ids = {r.headers.get("webhook-id") for r in stack.callbacks.received
                       if r.body.get("ticket") == {"source": source, "id": ticket} and r.body.get("status") == update}
                if ids - every_round:
                    problems.append(f"{where}: {label} callback under {len(ids)} webhook-ids")
                if f"{label}:callback" in record.desk_updates and this_round not in ids:
                    problems.append(f"{where}: {label} callback marked done but never received")
    return problems


def desk_writes(stack: Any, step: str, marker: str) -> int:
    """How many times the desk holds this step's write (each carries the step's marker)."""
    if step == "jira-comment":
        return sum(1 for c in stack.jira.stored if marker in c["body"] or any(
            p.get("key") == "deskbridge" and (p.get("value") or {}).get("marker") == marker for p in c["properties"]))
    if step == "jira-transition":
        key = f"deskbridge.{marker}"
        return sum(1 for _, _, props in stack.jira.transitioned if any(p.get("key") == key for p in props))
    return sum(1 for row in stack.servicenow.journal if marker in row["value"])
