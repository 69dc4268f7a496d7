"""Shared fixtures: one local stack per session, fresh tables, queues and runtime per test.

The bridge runs exactly as in Azure, through the functions registered in
``function_app``; only the services it calls are stand-ins, reached over
real sockets (HTTPS with a throw-away CA) and Azurite for storage.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import azure.functions as func  # noqa: E402
from azure.functions.queue import QueueMessage  # noqa: E402

from deskbridge import runtime  # noqa: E402
from deskbridge.clock import ShiftedClock  # noqa: E402
from deskbridge.errors import StorageError  # noqa: E402
from deskbridge.settings import ConfigurationError, Settings  # noqa: E402
from devtools.stack import LocalStack  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
_FUNCTIONS: dict[str, Any] = {}
_names = itertools.count(1)
_STORAGE_MADE: set[tuple[str, ...]] = set()


def ensure_storage(settings: dict[str, str]) -> None:
    """The bridge's tables and queues exist, as the infra templates make them in Azure: made once per set of
    names, by a runtime of its own (the bridge's runtime under test builds nothing for it)."""
    names = ("AzureWebJobsStorage", "BRIDGE_LEDGER_TABLE", "BRIDGE_DELIVERIES_TABLE", "BRIDGE_RETRY_QUEUE",
             "BRIDGE_RETRY_POISON_QUEUE", "BRIDGE_DESK_QUEUE", "BRIDGE_DESK_POISON_QUEUE")
    key = tuple(settings.get(name, "") for name in names)
    if key in _STORAGE_MADE or not key[0]:
        return
    try:
        runtime.Runtime(Settings(settings)).ensure_storage()
    except (ConfigurationError, StorageError):  # a test of broken storage settings: nothing to make
        return
    _STORAGE_MADE.add(key)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def functions() -> dict[str, Any]:
    """The registered functions, by name (get_functions may be called once per app)."""
    if not _FUNCTIONS:
        import function_app

        _FUNCTIONS.update({f.get_function_name(): f for f in function_app.app.get_functions()})
    return _FUNCTIONS


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    started = LocalStack(tmp_path_factory.mktemp("stack")).start()
    saved = {k: os.environ.get(k) for k in started.process_environment}
    # The SDKs read trust (REQUESTS_CA_BUNDLE) and identity (AZURE_*) from the process environment.
    os.environ.update(started.process_environment)
    yield started
    started.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Bridge:
    """The app under test: settings, and calls into its registered functions.

    ``clock`` is the one the runtime hands out: ``bridge.clock.advance(s)`` moves the bridge's time
    forward (stale limits, grace periods, cache ages) without sleeping. ``sdk_options`` go to every
    Azure SDK client (``{"retry_total": 0}`` lets a failure reach the bridge instead of the SDK's back-off).
    """

    def __init__(self, stack: LocalStack, settings: dict[str, str]) -> None:
        self.stack = stack
        self.settings = settings
        self.clock = ShiftedClock()
        stack.point.clock = self.clock.time  # the simulator's requests move on when the bridge's time does
        self.sdk_options: dict[str, Any] = {}
        ensure_storage(settings)
        self.runtime = runtime.reset(settings, self.clock)

    def configure(self, **changes: str) -> None:
        """Change settings (a new worker process, as after an app-settings change)."""
        for key, value in changes.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value
        self.restart()

    def restart(self) -> None:
        """A new worker process: same settings and clock, no clients, caches or tokens."""
        ensure_storage(self.settings)
        self.runtime = runtime.reset(self.settings, self.clock, self.sdk_options)

    def http(
        self,
        name: str,
        body: Any = None,
        *,
        method: str = "POST",
        headers: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        if isinstance(body, bytes):
            data = body
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode("utf-8")
        sent = {"Content-Type": "application/json"} if data else {}
        sent.update(headers or {})
        request = func.HttpRequest(method, f"http://localhost:7071/api/{name}", headers=sent, params=params or {},
                                   route_params=route_params or {}, body=data)
        response = functions()[name].get_user_function()(request)
        assert response.mimetype == "application/json", response.mimetype
        return response.status_code, json.loads(response.get_body())

    def status(self, source: str, ticket: str) -> tuple[int, Any]:
        return self.http("request_status", method="GET", route_params={"source": source, "ticket": ticket})

    def record(self, source: str, ticket: str) -> Any:
        return self.runtime.ledger.get(source, ticket)

    # -- queues -------------------------------------------------------------
    def _queue_client(self, name: str) -> Any:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        return QueueClient.from_connection_string(
            self.settings["AzureWebJobsStorage"], name,
            message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())

    def queue_count(self, name: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._queue_client(name).get_queue_properties().approximate_message_count
        except ResourceNotFoundError:  # never created: nothing was ever queued
            return 0

    def drain(self, queue_setting: str, function: str, *, timeout: float = 30.0) -> int:
        """Hand every message of a queue, as it comes due, to a queue-triggered function.

        Returns how many messages were handled. Messages come from Azurite and
        are deleted after the function returns, as the host would.
        """
        if self.queue_count(self.settings[queue_setting]) == 0:
            return 0
        client = self._queue_client(self.settings[queue_setting])
        handled = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = list(client.receive_messages(messages_per_page=32, visibility_timeout=60, max_messages=32))
            for message in batch:
                incoming = QueueMessage(id=message.id, body=message.content.encode("utf-8"),
                                        dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
                functions()[function].get_user_function()(incoming)
                client.delete_message(message)
                handled += 1
            if not batch:
                if client.get_queue_properties().approximate_message_count == 0:
                    return handled
                time.sleep(0.2)
        raise AssertionError(f"{queue_setting} still had messages after {timeout} s")

    def messages(self, queue_setting: str) -> list[str]:
        """Visible messages, without taking them."""
        if self.queue_count(self.settings[queue_setting]) == 0:
            return []
        client = self._queue_client(self.settings[queue_setting])
        return [m.content for m in client.peek_messages(max_messages=32)]

    def delayed(self, queue_setting: str) -> int:
        """How many messages of a queue are waiting and not visible yet (sent with a delay)."""
        return self.queue_count(self.settings[queue_setting]) - len(self.messages(queue_setting))

    def next_due(self, queue_setting: str, *, timeout: float = 30.0) -> tuple[Any, float]:
        """Wait until a message of the queue is visible and take it, as the host would (visible again after 60 s
        unless deleted); returns it and the seconds waited for it."""
        client = self._queue_client(self.settings[queue_setting])
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            batch = list(client.receive_messages(max_messages=1, visibility_timeout=60))
            if batch:
                return batch[0], time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"no message of {queue_setting} came due within {timeout} s")

    def handle(self, queue_setting: str, function: str, message: Any) -> None:
        """Hand a message taken from Azurite to a queue function, and delete it when it returns (as the host)."""
        incoming = QueueMessage(id=message.id, body=message.content.encode("utf-8"),
                                dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
        functions()[function].get_user_function()(incoming)
        self._queue_client(self.settings[queue_setting]).delete_message(message)

    def waiting_retry(self, source: str, ticket: str) -> str:
        """The text of the one retry message waiting, delayed, in Azurite for a ticket.

        A message that is not visible yet cannot be read back, so once Azurite shows exactly one message
        waiting and none visible, its text is rebuilt from what it holds: the ledger key and the attempt
        token the record carries (deskbridge.retries.QueueKey).
        """
        from deskbridge.retries import QueueKey

        assert (self.delayed("BRIDGE_RETRY_QUEUE"), self.messages("BRIDGE_RETRY_QUEUE")) == (1, []), (
            "one delayed retry message is waiting")
        record = self.record(source, ticket)
        return QueueKey(source, ticket, token=record.attempt_token).encode()


@pytest.fixture
def bridge(stack: LocalStack) -> Iterator[Bridge]:
    n = next(_names)
    settings = dict(os.environ) | stack.settings | {
        "BRIDGE_LEDGER_TABLE": f"ledger{n}x{os.getpid()}",
        "BRIDGE_DELIVERIES_TABLE": f"deliveries{n}x{os.getpid()}",
        "BRIDGE_RETRY_QUEUE": f"retries-{n}-{os.getpid()}",
        "BRIDGE_RETRY_POISON_QUEUE": f"retries-{n}-{os.getpid()}-poison",
        "BRIDGE_DESK_QUEUE": f"desk-{n}-{os.getpid()}",
        "BRIDGE_DESK_POISON_QUEUE": f"desk-{n}-{os.getpid()}-poison",
        "BRIDGE_RETRY_SCHEDULE": "1,1",
        "BRIDGE_RETRY_MAX_AGE_SECONDS": "0",
        "POINT_RETRY_BUDGET_SECONDS": "2",
        "POINT_READ_TIMEOUT_SECONDS": "1.5",
    }
    stack.reset()
    yield Bridge(stack, settings)
    runtime.reset({})
