"""Why a service could not be reached, said so a person can act on it.

The SDKs report every transport failure alike (``ServiceRequestError``,
``requests.ConnectionError``); the cause is deeper in the exception chain.
:func:`diagnose` finds it and names it: an untrusted certificate (with the CA
bundle in use), nothing listening (connection refused), a name that does not
resolve, a timeout, a failed TLS handshake, or a missing CA bundle file::

    from deskbridge.causes import diagnose

    try:
        client.get_secret(name)
    except ServiceRequestError as exc:
        cause = diagnose(exc, service="Key Vault", url=vault_url, setting="KEY_VAULT_URL")
        if cause:
            print(cause.message, "->", cause.hint)

``message`` names the address (for the person at the terminal); ``brief``
does not, and is what goes into exceptions, logs and the ledger's last error,
which the status route shows to any caller with a function key; ``in_full``
turns one into the other.

It imports nothing from the rest of the bridge, so any adapter, ``doctor``
check or command can use it. The operator commands tell it which
``local.settings.json`` they loaded (:func:`note_local_settings`), so a hint
can name the CA bundle that file sets and say when a local stack wrote it.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

CERTIFICATE = "certificate"  # the server's certificate is not trusted here
CA_BUNDLE = "ca bundle"  # the CA bundle named by REQUESTS_CA_BUNDLE does not exist
REFUSED = "refused"  # nothing listens on that address
NAME = "name"  # the host name does not resolve
TIMEOUT = "timeout"  # no answer in time
TLS = "tls"  # the TLS handshake failed for another reason (an http:// port, an old protocol)
CONNECTION = "connection"  # any other connection failure (reset, network unreachable)

AZURITE_PORTS = frozenset({10000, 10001, 10002})  # Azurite's default blob, queue and table ports
START_LOCAL_STACK = (
    "start the local stack in another terminal: .venv/bin/python -m devtools.stack (it writes local.settings.json "
    "for its new ports). scripts/run-local starts it only when Azure Functions Core Tools are installed; without "
    "them it runs the demo, which leaves nothing running"
)


@dataclass(frozen=True)
class LocalSettings:
    """What the operator commands read from local.settings.json."""

    path: str
    ca_bundle: str = ""  # its REQUESTS_CA_BUNDLE value, if any
    written_by_stack: bool = False  # python -m devtools.stack wrote it


_local: LocalSettings | None = None


def note_local_settings(local: LocalSettings | None) -> None:
    """Remember the local.settings.json this process loaded (the operator commands call this)."""
    global _local
    _local = local


@dataclass(frozen=True)
class Unreachable:
    """A transport failure, named: ``message`` says what happened, ``hint`` what to do."""

    kind: str
    service: str
    address: str  # host:port
    phrase: str  # e.g. "nothing listens on 127.0.0.1:10002 (connection refused)"
    hint: str
    general: str = ""  # the phrase without the address, e.g. "nothing listens there (connection refused)"

    @property
    def message(self) -> str:
        """For the person at the terminal (doctor, the commands): with the address."""
        return f"{self.service} unreachable: {self.phrase}"

    @property
    def brief(self) -> str:
        """For exceptions, logs and the ledger's last error, which the status route shows: no address."""
        return f"{self.service} unreachable: {self.general or self.phrase}"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address.rsplit(":", 1)[0])

    def __str__(self) -> str:
        return self.message


def is_loopback(url_or_host: str) -> bool:
    """A URL or host name on this machine (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host.strip("[]")
    host = (host or "").lower()
    return host == "localhost" or host == "::1" or host.startswith("127.")


def ca_bundle_in_use() -> tuple[str, str]:
    """(path, how it was chosen) of the CA bundle ``requests`` verifies certificates with."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(variable):
            return os.environ[variable], variable
    try:
        import certifi

        return certifi.where(), "the default (certifi; REQUESTS_CA_BUNDLE is not set)"
    except ImportError:  # pragma: no cover - requests depends on certifi
        return "", "the system default"


def diagnose(exc: BaseException, *, service: str, url: str = "", setting: str = "") -> Unreachable | None:
    """The cause of a transport failure somewhere in ``exc``'s chain, or None when it is not one."""
    chain = list(_chain(exc))
    kind, detail = _kind(chain)
    if kind is None:
        return None
    host, port = _address(chain, url)
    address = f"{host}:{port}" if port else host or "the server"
    phrase = {
        CERTIFICATE: f"the certificate of {address} is not trusted ({detail})",
        CA_BUNDLE: f"the CA bundle {detail} does not exist",
        REFUSED: f"nothing listens on {address} (connection refused)",
        NAME: f"the name {host or 'of the server'} does not resolve (DNS)",
        TIMEOUT: f"{address} did not answer in time ({detail})",
        TLS: f"the TLS handshake with {address} failed ({detail})",
        CONNECTION: f"the connection to {address} failed ({detail})",
    }[kind]
    general = {
        CERTIFICATE: f"its certificate is not trusted ({detail})",
        CA_BUNDLE: "the CA bundle REQUESTS_CA_BUNDLE names does not exist",
        REFUSED: "nothing listens there (connection refused)",
        NAME: "its name does not resolve (DNS)",
        TIMEOUT: f"no answer in time ({detail})",
        TLS: f"the TLS handshake failed ({detail})",
        CONNECTION: f"the connection failed ({detail})",
    }[kind]
    hint = _hint(kind, host, port, detail, setting or service, url)
    return Unreachable(kind, service, address, phrase, hint, general)


def in_full(text: str, cause: Unreachable | None) -> str:
    """``text`` (an exception's message) with the cause's brief form replaced by the full one, address included."""
    return text.replace(cause.brief, cause.message) if cause is not None else text


# -- the chain -------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, and the SDKs' own links."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, name, None) for name in ("inner_exception", "reason", "__cause__", "__context__")]
        linked += list(getattr(current, "args", ()))
        todo += [e for e in linked if isinstance(e, BaseException)]


_TEXT_KINDS = (
    (CA_BUNDLE, re.compile(r"Could not find a suitable TLS CA certificate bundle, invalid path: (\S+)")),
    (CERTIFICATE, re.compile(r"CERTIFICATE_VERIFY_FAILED\] certificate verify failed: ([^(]+?)\s*\(")),
    (REFUSED, re.compile(r"Connection refused|\[Errno 111\]|\[WinError 10061\]")),
    (
        NAME,
        re.compile(
            r"Name or service not known|nodename nor servname|Temporary failure in name resolution|"
            r"getaddrinfo failed|No address associated with hostname|Failed to resolve"
        ),
    ),
    (TIMEOUT, re.compile(r"timed out")),
)
# Transport failures the SDKs wrap, known by name so this module imports none of them.
_TRANSPORT_TYPES = frozenset(
    {
        "ConnectionError",
        "ProtocolError",
        "ServiceRequestError",
        "ServiceResponseError",
        "RemoteDisconnected",
        "NewConnectionError",
        "MaxRetryError",
        "ChunkedEncodingError",
        "IncompleteRead",
    }
)
_NETWORK_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def _kind(chain: list[BaseException]) -> tuple[str | None, str]:
    """The most telling cause in the chain, and its detail."""
    found: dict[str, str] = {}
    for item in chain:
        name = type(item).__name__
        if isinstance(item, ssl.SSLCertVerificationError):
            found.setdefault(CERTIFICATE, getattr(item, "verify_message", "") or "certificate verify failed")
        elif isinstance(item, ConnectionRefusedError):
            found.setdefault(REFUSED, "")
        elif isinstance(item, socket.gaierror):
            found.setdefault(NAME, "")
        elif isinstance(item, ssl.SSLError):
            found.setdefault(TLS, getattr(item, "reason", None) or "TLS error")
        elif isinstance(item, TimeoutError) or "Timeout" in name:
            found.setdefault(TIMEOUT, "read timeout" if "Read" in name or "Response" in name else "connect timeout")
        elif isinstance(item, ConnectionError) or getattr(item, "errno", None) in _NETWORK_ERRNOS:
            found[CONNECTION] = os.strerror(item.errno) if getattr(item, "errno", None) else name  # innermost wins
        elif name in _TRANSPORT_TYPES:
            found.setdefault(CONNECTION, name)
        text = str(item)
        for kind, pattern in _TEXT_KINDS:
            match = pattern.search(text)
            if match:
                detail = match.group(1).strip() if pattern.groups else ""
                if kind == TIMEOUT:
                    detail = "read timeout" if "Read timed out" in text else "connect timeout"
                found.setdefault(kind, detail)
    for kind in (CA_BUNDLE, CERTIFICATE, REFUSED, NAME, TIMEOUT, TLS, CONNECTION):
        if kind in found:
            return kind, found[kind] or ("certificate verify failed" if kind == CERTIFICATE else "")
    return None, ""


_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)")


def _address(chain: list[BaseException], url: str) -> tuple[str, int | None]:
    for item in chain:
        # ``pool`` is read from the instance only: on urllib3 2's NewConnectionError it is a
        # deprecated property that warns, and ``conn`` already names the same host there.
        for holder in (getattr(item, "conn", None), getattr(item, "__dict__", {}).get("pool")):
            host, port = getattr(holder, "host", None), getattr(holder, "port", None)
            if host:
                return str(host), int(port) if port else None
        args = getattr(item, "args", ())
        if args and hasattr(args[0], "host") and getattr(args[0], "host", None):
            return str(args[0].host), getattr(args[0], "port", None)
        match = _HOST_PORT.search(str(item))
        if match:
            return match.group(1), int(match.group(2))
        request = getattr(item, "request", None)
        if getattr(request, "url", None):
            url = url or request.url
    parts = urlsplit(url) if url else None
    if parts and parts.hostname:
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    return "", None


# -- what to do ------------------------------------------------------------------------


def _hint(kind: str, host: str, port: int | None, detail: str, setting: str, url: str) -> str:
    local = _local
    loopback = is_loopback(host) if host else False
    if kind in (CERTIFICATE, CA_BUNDLE):
        bundle, chosen = ca_bundle_in_use()
        trust = (
            f"certificates are checked against REQUESTS_CA_BUNDLE={bundle}"
            if chosen == "REQUESTS_CA_BUNDLE"
            else f"certificates are checked against {chosen}: {bundle}"
            if bundle
            else f"certificates are checked against {chosen}"
        )
        if kind == CA_BUNDLE:
            return (
                f"{trust}, which is not there: point REQUESTS_CA_BUNDLE at an existing bundle, or unset it to "
                "use the default"
            )
        if "mismatch" in detail.lower():
            return f"{trust}; the certificate is for another name: check the host name in {setting}"
        if local and local.ca_bundle and os.path.abspath(local.ca_bundle) != os.path.abspath(bundle):
            whose = " (the CA of the local stack that wrote it)" if local.written_by_stack else ""
            return (
                f"{trust}, from this shell's environment, which wins over {local.path}: that file sets "
                f"REQUESTS_CA_BUNDLE={local.ca_bundle}{whose}. Run the command with "
                f"REQUESTS_CA_BUNDLE={local.ca_bundle} in front, or unset REQUESTS_CA_BUNDLE"
            )
        if loopback:
            return (
                f"{trust}; the local stand-ins' certificates come from the local stack's own CA: set "
                "REQUESTS_CA_BUNDLE to the CA bundle python -m devtools.stack prints (.local/tls/standin-ca.pem)"
            )
        return (
            f"{trust}; if a proxy on this network inspects TLS, add its CA to a bundle and point "
            f"REQUESTS_CA_BUNDLE at it; otherwise check {setting}"
        )
    if kind == REFUSED:
        if loopback and port in AZURITE_PORTS:
            return (
                "Azurite (the storage emulator) is not running on its default ports: start it with "
                "node_modules/.bin/azurite --inMemoryPersistence --skipApiVersionCheck (after scripts/bootstrap), "
                f"or {START_LOCAL_STACK}"
            )
        if loopback and local and local.written_by_stack:
            return (
                f"{local.path} was written by a local stack that is not running any more (its ports change on "
                f"every start): {START_LOCAL_STACK}"
            )
        if loopback:
            return f"nothing runs there on this machine: {START_LOCAL_STACK}; or correct {setting}"
        return f"the host answers but refuses this port: check the port in {setting}, and any firewall on the way"
    if kind == NAME:
        return (
            f"check {setting} for a typo; a private endpoint resolves only inside its network (VPN, private DNS zone)"
        )
    if kind == TIMEOUT:
        where = f" (curl -v {url})" if url else ""
        return (
            f"a firewall or network rule may drop the traffic (a Key Vault or storage firewall admits selected "
            f"networks only), or the service is slow: check from this machine{where}, then try again"
        )
    if kind == TLS:
        return f"check that {setting} is the service's https:// address (not a plain http:// port)"
    return f"check {setting} and this machine's network, then try again"
