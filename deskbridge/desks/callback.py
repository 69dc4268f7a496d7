"""Outbound: the outcome POSTed to an /api/provision caller's ``ticket.callbackUrl``, on the public internet only.

Each send reads the URL again (:mod:`deskbridge.callback_url`: https, no
userinfo, no numeric-host tricks, the allow-list), resolves its host once,
refuses the send when any address it resolves to is not public (IPv4 and
IPv6, mapped forms included; loopback only with
``BRIDGE_CALLBACK_ALLOW_LOOPBACK``), and then connects to an address it
checked: the connection pool is built for that address, with the URL's host
as the TLS server name and the name the certificate must match, so no
second resolution happens and TLS still checks the name. No proxy (a proxy
would resolve the name itself), no redirects: a signed outcome goes to the
URL the caller gave, nowhere else. A refused destination is a permanent
failure (``CallbackError``, not transient): the desk update is given up,
visibly, never retried.

Every attempt for one update carries the same ``webhook-id``, so the
receiver can drop copies (at-least-once delivery).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from deskbridge.callback_url import CallbackPolicy, CallbackTarget, RefusedDestination, address_problem, read_target
from deskbridge.causes import diagnose
from deskbridge.errors import CallbackError, transient_status

__all__ = ["CallbackClient", "CallbackError", "PinnedAdapter"]

Resolver = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's shape
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PinnedAdapter(HTTPAdapter):
    """An HTTPS adapter that connects to the address a request is pinned to (``request.pinned``: address, host,
    port), with the host as TLS server name and asserted name; it never resolves a name and uses no proxy."""

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: bool | str | None, proxies: Any = None, cert: Any = None
    ) -> Any:
        pinned = getattr(request, "pinned", None)
        if pinned is None:
            raise RefusedDestination("a callback request must be pinned to a checked address")
        address, host, port = pinned
        _, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs["server_hostname"] = host
        pool_kwargs["assert_hostname"] = host
        return self.poolmanager.connection_from_host(address, port=port, scheme="https", pool_kwargs=pool_kwargs)


class CallbackClient:
    """POSTs outcomes to callback URLs that pass ``policy``; ``resolve`` is the name lookup (socket.getaddrinfo)."""

    def __init__(
        self,
        policy: CallbackPolicy | None = None,
        *,
        resolve: Resolver = socket.getaddrinfo,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self._policy = policy or CallbackPolicy()
        self._resolve = resolve
        self._session = session or requests.Session()
        self._adapter = PinnedAdapter()
        self._timeout = timeout

    def post(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        try:
            target = read_target(url, self._policy)
        except RefusedDestination as refused:
            raise CallbackError(f"callback refused: ticket.callbackUrl {refused}", transient=False) from None
        addresses = self._addresses(target)
        verify = self._session.merge_environment_settings(url, {}, False, None, None)["verify"]
        host_header = f"[{target.host}]" if ":" in target.host else target.host
        if target.port != 443:
            host_header += f":{target.port}"
        last: requests.RequestException | None = None
        for address in addresses:
            request = requests.Request("POST", url, data=data, headers={**headers, "Host": host_header}).prepare()
            request.pinned = (str(address), target.host, target.port)  # type: ignore[attr-defined]
            try:
                response = self._adapter.send(request, timeout=self._timeout, verify=verify)
            except requests.RequestException as exc:
                last = exc
                if _not_connected(exc):
                    continue  # nothing was sent to this address: the next one may answer
                break
            response.close()
            status = response.status_code
            if not 200 <= status < 300:
                raise CallbackError(
                    f"callback answered {status}", transient=transient_status(status), http_status=status
                )
            return
        assert last is not None
        cause = diagnose(last, service="the desk's callback", url=url)
        reason = cause.brief if cause else type(last).__name__
        raise CallbackError(f"callback unreachable: {reason}", transient=True, unreachable=cause) from None

    def _addresses(self, target: CallbackTarget) -> list[IPAddress]:
        """The addresses to try, each checked: the literal, or every address the name resolves to (once)."""
        if target.literal:
            return [ipaddress.ip_address(target.host)]
        try:
            found = self._resolve(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise CallbackError(
                f"callback unreachable: its host name could not be resolved ({type(exc).__name__})", transient=True
            ) from None
        addresses: list[IPAddress] = []
        for entry in found:
            try:
                address = ipaddress.ip_address(str(entry[4][0]))
            except ValueError:
                raise CallbackError(
                    "callback refused: its host resolved to something not an IP address", transient=False
                ) from None
            problem = address_problem(address, self._policy)
            if problem is not None:
                raise CallbackError(
                    f"callback refused: the host of ticket.callbackUrl resolves to {address}, which {problem}",
                    transient=False,
                )
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise CallbackError("callback unreachable: its host name resolved to no address", transient=True)
        return addresses


def _not_connected(exc: requests.RequestException) -> bool:
    """The connection was never made (refused, unreachable, timed out while connecting): nothing was sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)
