"""Where an outcome callback may go: the public internet only (pure: no I/O, no resolution).

A caller of ``/api/provision`` names its ``ticket.callbackUrl``; the bridge
POSTs each outcome there from inside its own network. So the URL must name a
public HTTPS receiver, never the bridge's neighbours (loopback, private,
link-local and metadata addresses, IPv6 loopback, ULA and link-local, IPv4
addresses mapped into IPv6). This module says what the URL alone shows
(:func:`url_problem`, at intake and again before each send) and whether one
resolved address may be connected to (:func:`address_problem`); the adapter
(``deskbridge.desks.callback``) resolves the name once, checks every address
with it, and connects to the address it checked.

Refused by the URL alone: another scheme than https; userinfo
(``name@host``, where the part before ``@`` is not the host); any host
written as a number other than the four-part dotted decimal form
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``: a URL reader turns
each into an IPv4 address, as browsers do); an address literal that is not
public; ``localhost`` and names under ``.localhost``; a host outside the
``BRIDGE_CALLBACK_HOSTS`` allow-list when one is set. Loopback (127.0.0.0/8,
::1, ``localhost``) is allowed only with ``BRIDGE_CALLBACK_ALLOW_LOOPBACK``
(local runs: the stand-ins listen on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0 to 255, no leading zero
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
# A label a URL reader takes as a number (decimal, octal with a leading 0, or hex): a host ending in one is an
# IPv4 address in some form (the WHATWG URL standard's "ends in a number").
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
# IPv6 ranges that carry an IPv4 address in their last 32 bits (besides ::ffff:0:0/96, read by ipv4_mapped).
_EMBEDDING_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))


@dataclass(frozen=True)
class CallbackPolicy:
    """The settings that shape where callbacks may go."""

    hosts: tuple[str, ...] = ()  # BRIDGE_CALLBACK_HOSTS: exact names and *.suffix; empty: any public host
    allow_loopback: bool = False  # BRIDGE_CALLBACK_ALLOW_LOOPBACK: local runs only


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL read and checked: its host (lower case, no brackets) and port."""

    host: str
    port: int
    literal: bool  # the host is an IP address literal (nothing to resolve)


class RefusedDestination(ValueError):
    """The callback URL, or an address its host resolves to, is not a public HTTPS receiver."""


def valid_host_pattern(entry: str) -> bool:
    """An entry of BRIDGE_CALLBACK_HOSTS: a DNS name, or ``*.`` and one (a suffix)."""
    name = entry[2:] if entry.startswith("*.") else entry
    labels = name.split(".")
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels) and not _ends_in_number(labels)


def _ends_in_number(labels: list[str]) -> bool:
    return bool(labels) and _NUMERIC_LABEL.fullmatch(labels[-1]) is not None


def _allowed_by_list(host: str, hosts: tuple[str, ...]) -> bool:
    for entry in hosts:
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: CallbackPolicy) -> str | None:
    """Why a callback may not connect to ``address``, or None when it may (public, or loopback when allowed)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "is a scoped IPv6 address"
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and any(address in network for network in _EMBEDDING_IPV4) and int(address) >> 32:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded, policy)
            if inner is not None:
                return f"carries the IPv4 address {embedded}, which {inner}"
    if address.is_loopback:
        return None if policy.allow_loopback else "is a loopback address"
    if (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_link_local
    ):
        return "is not a public address"
    return None


def read_target(url: str, policy: CallbackPolicy) -> CallbackTarget:
    """The host and port of a callback URL whose form is acceptable; RefusedDestination says why not."""
    if not isinstance(url, str) or not url:
        raise RefusedDestination("must be an https:// URL")
    if len(url) > MAX_URL_LENGTH:
        raise RefusedDestination(f"must be at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url) or "\\" in url:
        raise RefusedDestination("must be an https:// URL of printable ASCII, without spaces or backslashes")
    if not url[:8].lower() == "https://":
        raise RefusedDestination("must be an https:// URL")
    parts = urlsplit(url)
    authority = parts.netloc
    if "@" in authority:
        raise RefusedDestination("must not hold a user name or password (name@host)")
    if authority.startswith("["):
        literal, _, rest = authority[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise RefusedDestination("has a malformed host")
        port_text = rest[1:] if rest else ""
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise RefusedDestination("has a malformed IPv6 address") from None
        host, is_literal = literal.lower(), True
    else:
        host, _, port_text = authority.partition(":")
        host = host.lower().removesuffix(".")
        if not host:
            raise RefusedDestination("names no host")
        labels = host.split(".")
        if _DOTTED_QUAD.fullmatch(host):
            address, is_literal = ipaddress.IPv4Address(host), True
        elif _ends_in_number(labels):
            raise RefusedDestination(
                "names its host by a number in another form than a.b.c.d (e.g. 2130706433, "
                "0x7f.1, 127.1): write the host name"
            )
        elif not all(_LABEL.fullmatch(label) for label in labels) or len(host) > 253:
            raise RefusedDestination("has a host that is not a DNS name")
        else:
            is_literal = False
    port = 443
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RefusedDestination("has a malformed port")
        port = int(port_text)
    if is_literal:
        problem = address_problem(address, policy)
        if problem is not None:
            raise RefusedDestination(f"names a host that {problem}")
    elif host == "localhost" or host.endswith(".localhost"):
        if not policy.allow_loopback:
            raise RefusedDestination("names a host that is a loopback address")
    if policy.hosts and not _allowed_by_list(host, policy.hosts):
        raise RefusedDestination("names a host that BRIDGE_CALLBACK_HOSTS does not list")
    return CallbackTarget(host, port, is_literal)


def url_problem(url: str, policy: CallbackPolicy) -> str | None:
    """What the URL alone shows to be wrong (the message for ``ticket.callbackUrl``), or None."""
    try:
        read_target(url, policy)
    except RefusedDestination as refused:
        return str(refused)
    return None
