"""A tiny threaded HTTPS server that records every call it receives."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # close the connection without answering

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            return b"", headers
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode("utf-8"), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode("utf-8"), headers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms stalls on kept-alive connections

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        call = Call(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
        standin: StandIn = self.server.standin  # type: ignore[attr-defined]
        standin.record(call)
        try:
            reply = standin.respond(call)
        except Exception as exc:  # a stand-in bug should show, not hang the client
            reply = Reply(500, {"error": f"stand-in error: {type(exc).__name__}: {exc}"})
        if reply.delay:
            standin.wait(reply.delay)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        data, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


@dataclass
class Fault:
    """A planned misbehaviour for the next ``count`` matching calls."""

    count: int
    reply: Reply
    method: str = ""
    path_prefix: str = ""
    process: bool = False  # handle the call for real, then answer late or not at all

    def matches(self, call: Call) -> bool:
        return (not self.method or call.method == self.method) and call.path.startswith(self.path_prefix)


class StandIn:
    """Subclasses implement ``handle(call) -> Reply``; faults are layered on top."""

    name = "stand-in"

    def __init__(self, tls: ssl.SSLContext | None = None, port: int = 0) -> None:
        self._tls = tls
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.latency = 0.0  # added to every answer
        self._flaky: tuple[float, tuple[int, ...], Any, str, str] | None = None

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> StandIn:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        server.daemon_threads = True
        server.handle_error = lambda request, client_address: None  # dropped connections are on purpose
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        # A short poll interval: stop() (shutdown) waits for it, once per stand-in.
        threading.Thread(target=server.serve_forever, args=(0.1,), name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- recording ----------------------------------------------------------
    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def calls_to(self, method: str, path_prefix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- faults -------------------------------------------------------------
    def fail_next(
        self,
        count: int,
        status: int = 503,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        method: str = "",
        path_prefix: str = "",
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` matching calls with ``status`` instead of handling them."""
        reply_headers = dict(headers or {})
        if retry_after is not None:
            reply_headers["Retry-After"] = f"{retry_after:g}"
        reply = Reply(status, body if body is not None else {"error": f"simulated {status}"}, reply_headers)
        with self._lock:
            self.faults.append(Fault(count, reply, method, path_prefix))

    def hang_next(self, count: int, seconds: float, *, method: str = "", path_prefix: str = "") -> None:
        """Handle the next calls for real but answer only after ``seconds`` (a client read timeout)."""
        with self._lock:
            self.faults.append(Fault(count, Reply(delay=seconds), method, path_prefix, process=True))

    def drop_next(self, count: int, *, method: str = "", path_prefix: str = "") -> None:
        """Handle the next calls for real, then close the connection without an answer."""
        with self._lock:
            self.faults.append(Fault(count, Reply(drop=True), method, path_prefix, process=True))

    def flaky(self, ratio: float, statuses: tuple[int, ...] = (503,), *, seed: int = 0, method: str = "",
              path_prefix: str = "") -> None:
        """Fail about ``ratio`` of the matching calls, with one of ``statuses``, repeatably (seeded)."""
        import random

        self._flaky = (ratio, statuses, random.Random(seed), method, path_prefix)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()
            self.latency = 0.0
            self._flaky = None

    def respond(self, call: Call) -> Reply:
        with self._lock:
            fault = next((f for f in self.faults if f.count > 0 and f.matches(call)), None)
            if fault is not None:
                fault.count -= 1
                self.faults = [f for f in self.faults if f.count > 0]
            elif self._flaky is not None:
                ratio, statuses, rng, method, prefix = self._flaky
                if (not method or call.method == method) and call.path.startswith(prefix) and rng.random() < ratio:
                    status = rng.choice(statuses)
                    fault = Fault(1, Reply(status, {"error": f"simulated {status}"}))
        if fault is not None and not fault.process:
            return Reply(fault.reply.status, fault.reply.body, dict(fault.reply.headers), self.latency)
        reply = self.handle(call)
        reply.delay += self.latency
        if fault is not None:
            reply.delay += fault.reply.delay
            reply.drop = fault.reply.drop
        return reply

    def handle(self, call: Call) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError


def bearer(call: Call) -> str:
    value = call.headers.get("Authorization") or call.headers.get("authorization") or ""
    return value[7:] if value.lower().startswith("bearer ") else ""
