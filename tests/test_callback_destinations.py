"""Outcome callbacks go to the public internet only (issue 21, item 2).

A loopback HTTPS listener (IPv4 and IPv6, the stand-ins' certificate) counts
every TCP connection it accepts. Each address form the review used to reach
loopback or the bridge's own network is refused at intake (400 naming
``ticket.callbackUrl``, through the registered /api/provision function) and
the listener sees no connection; a URL accepted while loopback was allowed is
refused again at send time once it is not (a permanent failure of the desk
update, given up, not retried); names are resolved once, every address is
checked, and the connection goes to the address checked, with TLS still
checking the name. The name lookup is the one stand-in here (``resolve``,
socket.getaddrinfo's shape): the bridge's own code runs as it is.
"""

from __future__ import annotations

import copy
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import fixture

from deskbridge.callback_url import CallbackPolicy
from deskbridge.desks.callback import CallbackClient
from deskbridge.errors import CallbackError

APOLLO = {
    "templateId": 7,
    "displayName": "Project Apollo",  # the workspace of tests/fixtures/point_*.json
    "desiredUrl": "project-apollo",
    "owners": ["olga.owner@contoso.com"],
    "description": "Apollo programme",
    "metadata": {},
    "isPrivate": False,
}

# Every form of issue 21's item 2, and the ranges it names; {port} is the listener's.
REFUSED_AT_INTAKE = [
    "https://localhost:{port}/hooks",
    "https://sub.localhost:{port}/hooks",
    "https://127.0.0.1:{port}/hooks",
    "https://2130706433:{port}/hooks",
    "https://0177.0.0.1:{port}/hooks",
    "https://0x7f.1:{port}/hooks",
    "https://0x7f000001:{port}/hooks",
    "https://127.1:{port}/hooks",
    "https://trusted.example.com@127.0.0.1:{port}/hooks",
    "https://trusted.example.com:pw@127.0.0.1:{port}/hooks",
    "https://10.0.0.1:{port}/hooks",
    "https://172.16.0.1:{port}/hooks",
    "https://192.168.1.1:{port}/hooks",
    "https://169.254.169.254:{port}/metadata",
    "https://100.64.0.1:{port}/hooks",
    "https://0.0.0.0:{port}/hooks",
    "https://[::1]:{port}/hooks",
    "https://[::]:{port}/hooks",
    "https://[fc00::1]:{port}/hooks",
    "https://[fd12:3456::1]:{port}/hooks",
    "https://[fe80::1]:{port}/hooks",
    "https://[fe80::1%25lo]:{port}/hooks",
    "https://[::ffff:127.0.0.1]:{port}/hooks",
    "https://[::ffff:7f00:1]:{port}/hooks",
    "https://[::ffff:169.254.169.254]:{port}/hooks",
    "https://[::ffff:10.0.0.1]:{port}/hooks",
    "https://[64:ff9b::7f00:1]:{port}/hooks",
    "https://[2002:7f00:1::1]:{port}/hooks",
    "http://127.0.0.1:{port}/hooks",
]

# Addresses a public-looking name may resolve to (DNS answers the caller controls).
NOT_PUBLIC = [
    "127.0.0.1",
    "127.0.0.2",
    "10.1.2.3",
    "172.31.255.1",
    "192.168.0.10",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "::",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:a00:1::1",
]


class Listener:
    """An HTTPS receiver on 127.0.0.1 and ::1 (one port) that counts the connections it accepts."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.accepted = 0
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                listener.requests.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                connection, address = self.socket.accept()
                with listener._lock:
                    listener.accepted += 1
                return context.wrap_socket(connection, server_side=True), address

        class Server6(Server):
            address_family = socket.AF_INET6

        for _ in range(20):
            six = Server6(("::1", 0), Handler)
            self.port = six.server_address[1]
            try:
                four = Server(("127.0.0.1", self.port), Handler)
            except OSError:
                six.server_close()
                continue
            break
        else:
            raise RuntimeError("no port free on both 127.0.0.1 and ::1")
        self._servers = (four, six)
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def listener(stack) -> Iterator[Listener]:
    running = Listener(stack.tls.server_context)
    yield running
    running.stop()


def event(kind: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture(f"point_{kind}.json"))
    body["meta"]["idempotencyKey"] = str(uuid.uuid4())
    return body


def point_event(bridge, body: dict[str, Any]) -> int:
    import json

    from deskbridge.auth import sign_point_event

    data = json.dumps(body).encode("utf-8")
    headers = {"Signature": sign_point_event(data, bridge.stack.point.signature_key), "Algorithm": "HMACSHA256"}
    return bridge.http("point_events", data, headers=headers)[0]


def provision(bridge, ticket: str, callback: str) -> tuple[int, Any]:
    return bridge.http("provision", APOLLO | {"ticket": {"source": "acme", "id": ticket, "callbackUrl": callback}})


# -- at intake: the URL alone --------------------------------------------------------------


def test_every_address_form_is_refused_at_intake_and_nothing_connects(bridge, listener):
    bridge.configure(BRIDGE_CALLBACK_ALLOW_LOOPBACK="false")
    for n, form in enumerate(REFUSED_AT_INTAKE):
        url = form.format(port=listener.port)
        status, answer = provision(bridge, f"CB-{n}", url)
        assert status == 400, (url, answer)
        assert [e["field"] for e in answer["errors"]] == ["ticket.callbackUrl"], (url, answer)
        assert bridge.record("acme", f"CB-{n}") is None
    assert listener.accepted == 0
    assert bridge.stack.point.provisioned == []


def test_the_listener_does_see_a_callback_that_is_allowed(bridge, listener):
    """The control: with loopback allowed (a local run), the same listener gets the outcome, so its zero above
    means the bridge never connected."""
    status, answer = provision(bridge, "CB-OK", f"https://127.0.0.1:{listener.port}/hooks")
    assert status == 201, answer
    assert point_event(bridge, event("completed")) == 200
    assert bridge.drain("BRIDGE_DESK_QUEUE", "desk_update") == 1
    assert listener.accepted == 1 and len(listener.requests) == 1


def test_allow_list_names_the_receivers(bridge):
    bridge.configure(BRIDGE_CALLBACK_HOSTS="hooks.contoso.com,*.receivers.example")
    for n, url in enumerate(["https://hooks.contoso.com/x", "https://a.receivers.example:8443/x"]):
        assert provision(bridge, f"AL-{n}", url)[0] == 201
    for n, url in enumerate(
        [
            "https://receivers.example/x",
            "https://evil.com/x",
            "https://8.8.8.8/x",
            "https://hooks.contoso.com.evil.com/x",
        ]
    ):
        status, answer = provision(bridge, f"AN-{n}", url)
        assert status == 400 and answer["errors"][0]["field"] == "ticket.callbackUrl", (url, answer)
        assert "BRIDGE_CALLBACK_HOSTS" in answer["errors"][0]["message"]


@pytest.mark.parametrize("value", [",", "*.", "https://hooks.contoso.com", "10.0.0.1", "*.127.0.0.1"])
def test_a_malformed_allow_list_is_a_503_naming_it(bridge, value):
    bridge.configure(BRIDGE_CALLBACK_HOSTS=value)
    status, answer = provision(bridge, "CFG-1", "https://hooks.contoso.com/x")
    assert status == 503, answer
    assert [e["field"] for e in answer["errors"]] == ["BRIDGE_CALLBACK_HOSTS"]
    if len(value) > 2:
        assert value not in str(answer)  # named, never shown


def test_a_callback_signing_setting_that_names_nothing_is_a_503(bridge):
    bridge.configure(BRIDGE_CALLBACK_SIGNING_SECRET_NAME=" , ")
    status, answer = provision(bridge, "CFG-2", "https://hooks.contoso.com/x")
    assert status == 503 and [e["field"] for e in answer["errors"]] == ["BRIDGE_CALLBACK_SIGNING_SECRET_NAME"]
    status, answer = bridge.http("provision", APOLLO, params={"validate": "true"})
    assert status == 503 and [e["field"] for e in answer["errors"]] == ["BRIDGE_CALLBACK_SIGNING_SECRET_NAME"]


# -- at send time ------------------------------------------------------------------------------


def test_a_callback_refused_at_send_time_is_given_up_and_never_connects(bridge, listener):
    """Accepted while loopback was allowed; the setting is off when the outcome is sent: refused, given up."""
    status, answer = provision(bridge, "CB-LATER", f"https://localhost:{listener.port}/hooks")
    assert status == 201, answer
    bridge.configure(BRIDGE_CALLBACK_ALLOW_LOOPBACK="false")
    assert point_event(bridge, event("completed")) == 200
    assert bridge.drain("BRIDGE_DESK_QUEUE", "desk_update") == 1
    assert listener.accepted == 0
    record = bridge.record("acme", "CB-LATER")
    assert "completed:gave-up" in record.desk_updates and record.desk_owed == {}
    assert len(bridge.messages("BRIDGE_DESK_POISON_QUEUE")) == 1  # visible: the poison queue and its alert
    assert bridge.drain("BRIDGE_DESK_QUEUE", "desk_update") == 0  # not retried


class Resolver:
    """The name lookup (socket.getaddrinfo's shape): the answers a caller's DNS would give, counted."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        addresses = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_a_name_resolving_to_a_non_public_address_is_refused(stack, listener, address):
    resolver = Resolver([address])
    client = CallbackClient(CallbackPolicy(), resolve=resolver)
    with pytest.raises(CallbackError) as refused:
        client.post(f"https://hooks.example.com:{listener.port}/x", b"{}", {"Content-Type": "application/json"})
    assert refused.value.transient is False and str(refused.value).startswith("callback refused")
    assert resolver.asked == ["hooks.example.com"] and listener.accepted == 0


def test_one_non_public_address_among_public_ones_refuses_the_send(stack, listener):
    resolver = Resolver(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "10.0.0.7"])
    client = CallbackClient(CallbackPolicy(), resolve=resolver)
    with pytest.raises(CallbackError, match="10.0.0.7") as refused:
        client.post(f"https://hooks.example.com:{listener.port}/x", b"{}", {})
    assert refused.value.transient is False and listener.accepted == 0


def test_the_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(stack, listener):
    """A rebinding DNS answers loopback (allowed here) first, then a private address: the second answer is never
    asked for, and the request goes to the checked address with the URL's host in Host and in TLS."""
    resolver = Resolver(["127.0.0.1"], ["10.0.0.1"])
    client = CallbackClient(CallbackPolicy(allow_loopback=True), resolve=resolver)
    client.post(f"https://localhost:{listener.port}/x", b"{}", {"Content-Type": "application/json"})
    assert resolver.asked == ["localhost"]
    assert listener.accepted == 1 and listener.requests[0]["Host"] == f"localhost:{listener.port}"


def test_tls_still_checks_the_name_of_the_url_not_the_address(stack, listener):
    """Pinned to 127.0.0.1, a name the certificate does not cover fails TLS: the pin does not skip the check."""
    client = CallbackClient(CallbackPolicy(allow_loopback=True), resolve=Resolver(["127.0.0.1"]))
    with pytest.raises(CallbackError, match="unreachable"):
        client.post(f"https://not-in-the-certificate.test:{listener.port}/x", b"{}", {})
    assert listener.accepted == 1 and listener.requests == []  # the handshake failed: nothing was posted


def test_userinfo_and_numeric_hosts_are_refused_at_send_time_too(stack, listener):
    resolver = Resolver(["127.0.0.1"])
    client = CallbackClient(CallbackPolicy(allow_loopback=True), resolve=resolver)
    for url in (
        f"https://trusted.example.com@127.0.0.1:{listener.port}/x",
        f"https://2130706433:{listener.port}/x",
        f"https://0x7f.1:{listener.port}/x",
        f"https://127.1:{listener.port}/x",
    ):
        with pytest.raises(CallbackError, match="refused") as refused:
            client.post(url, b"{}", {})
        assert refused.value.transient is False
    assert resolver.asked == [] and listener.accepted == 0


def test_redirects_stay_off(stack, listener):
    """The pinned adapter never follows a Location (nothing to resolve a second time)."""
    from devtools.desks import CallbackReceiver

    receiver = CallbackReceiver(tls=stack.tls.server_context)
    receiver.start()
    try:
        receiver.fail_next(1, 307, headers={"Location": f"https://127.0.0.1:{listener.port}/elsewhere"})
        client = CallbackClient(CallbackPolicy(allow_loopback=True))
        with pytest.raises(CallbackError, match="307"):
            client.post(f"{receiver.url}/hooks", b"{}", {})
    finally:
        receiver.stop()
    assert listener.accepted == 0
