"""Syskit Point API client: token, provisioning, templates, webhooks.

One :class:`PointClient` per worker process: one ``requests.Session`` (kept
alive connections), one Entra ID credential (its token cache), explicit
connect and read timeouts. :meth:`PointClient.provision` never re-sends a
POST whose outcome is unknown, and stays inside a time budget so the desk
gets its answer in seconds.

What an answer means (Syskit Point documents no idempotency, so only what
provably did not act is sent again): 2xx accepted; 408, 425, 429 and 503,
and a connection that failed before the request left, are retried (within
the budget, then from the queue; Retry-After honoured); 500, 502, 504 and
other 5xx, and no answer after sending, are uncertain and never re-sent by
the bridge on its own; 401/403 with a fresh token and 404/405 at the
provisioning endpoint (a wrong POINT_URL) are configuration problems, kept
on the retry schedule; any other 4xx is a refusal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import requests

from deskbridge import telemetry
from deskbridge.causes import diagnose
from deskbridge.clock import SYSTEM, Clock
from deskbridge.errors import PointError, SecretUnavailable, TokenError
from deskbridge.model import ProvisioningRequest

__all__ = ["CallOutcome", "PointClient", "PointError", "ProvisionResult", "TokenError", "TokenSource", "new_session"]

log = telemetry.logger("deskbridge.point")

# Syskit Point did not act: safe to send again.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 503})
# The endpoint is not a provisioning endpoint: POINT_URL (or a proxy in front) is wrong.
MISCONFIGURED_STATUSES = frozenset({404, 405})


# Entra ID error codes that mean "fix the configuration", with what to do.
ENTRA_HINTS = (
    ("AADSTS7000222", "invalid_client", "the client secret has expired: create a new one and put it in Key Vault"),
    ("AADSTS7000215", "invalid_client", "the client secret is wrong: put the current one in Key Vault"),
    # Federated mode (also matches AADSTS700211/700212/700213: issuer, audience, subject).
    ("AADSTS70021", "config", "no federated credential trusts this managed identity: add the federated credential to "
     "the app registration (issuer https://login.microsoftonline.com/POINT_TENANT_ID/v2.0, subject = the "
     "function's managed identity object id, audience api://AzureADTokenExchange)"),
    ("invalid_client", "invalid_client", "client secret expired or wrong: put the current one in Key Vault"),
    ("AADSTS700016", "config", "the app POINT_CLIENT_ID is not found in tenant POINT_TENANT_ID"),
    ("AADSTS500011", "config", "no Syskit Point API app with id POINT_API_APP_ID in this tenant"),
    ("invalid_scope", "config", "POINT_API_APP_ID does not name the Syskit Point API app"),
    ("AADSTS90002", "config", "tenant POINT_TENANT_ID not found"),
    ("unauthorized_client", "config", "the app is not allowed to use client credentials"),
)


def classify_token_failure(exc: BaseException) -> TokenError:
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError

    text = str(exc)
    for code, kind, hint in ENTRA_HINTS:
        if code in text:
            return TokenError(f"Entra ID refused the token request: {hint}", kind)
    if isinstance(exc, ServiceRequestError | ServiceResponseError | OSError):
        cause = diagnose(exc, service="Entra ID", setting="AZURE_AUTHORITY_HOST")
        return TokenError(cause.brief if cause else f"Entra ID unreachable ({type(exc).__name__})", "transient", cause)
    if isinstance(exc, ClientAuthenticationError):
        # No error code we know: most often an unreachable authority.
        return TokenError(
            f"Entra ID token request failed ({text.splitlines()[0][:160] if text else 'no detail'})", "transient"
        )
    return TokenError(f"token request failed ({type(exc).__name__})", "transient")


def _secret_failure(exc: SecretUnavailable) -> TokenError:
    """No token, because the client secret could not be read from Key Vault (and why, if known). The message
    ends up on the record the status route shows: it says what failed; the log names the secret."""
    log.warning("%s", exc, extra={"bridge_event": "secret"})
    return TokenError(exc.public, "transient" if exc.transient else "config", exc.unreachable, secret=exc)


_RENEW_BEFORE_EXPIRY = 300  # seconds: renew a token this long before it expires, as azure-identity does
_STILL_VALID_MARGIN = 30  # seconds: a token this close to expiry is not handed out any more


class TokenSource:
    """Tokens for Syskit Point, cached by one azure-identity credential."""

    def __init__(self, scope: str, build: Callable[[bool], Any], clock: Clock = SYSTEM) -> None:
        self._scope = scope
        self._build = build  # build(refresh_secret) -> credential
        self._clock = clock
        self._credential: Any = None
        self._token: Any = None  # the last AccessToken, reused until it is about to expire
        self._lock = threading.Lock()

    def token(self) -> str:
        try:
            return self._get()
        except TokenError as first:
            if first.kind != "invalid_client":
                raise
            self.refresh()  # the secret may have been rotated in Key Vault
            return self._get()

    def refresh(self) -> None:
        with self._lock:
            self._token = None
            self._credential = self._build(True)

    def _get(self) -> str:
        # One token request for many concurrent callers: the credential's own cache lets every
        # thread of a cold burst ask Entra ID at once. While a token is being renewed, others
        # keep using the current one if it is still valid.
        cached = self._token
        now = self._clock.time()
        if cached is not None and cached.expires_on - _RENEW_BEFORE_EXPIRY > now:
            return cached.token
        still_valid = cached is not None and cached.expires_on - _STILL_VALID_MARGIN > now
        if not self._lock.acquire(blocking=not still_valid):
            return cached.token  # another thread is renewing it
        try:
            cached = self._token
            if cached is not None and cached.expires_on - _RENEW_BEFORE_EXPIRY > self._clock.time():
                return cached.token
            if self._credential is None:
                self._credential = self._build(False)
            credential = self._credential
            try:
                self._token = credential.get_token(self._scope)
                return self._token.token
            except SecretUnavailable as exc:
                raise _secret_failure(exc) from None
            except Exception as exc:  # azure-identity raises several types; classify by content
                failure = classify_token_failure(exc)
            if failure.transient:
                # MSAL remembers a 5xx for a while and answers it again without asking;
                # the retry schedule already spaces attempts, so start afresh next time.
                self._credential = None
                if still_valid:
                    return cached.token  # renewal failed, but the current token still works
            raise failure
        finally:
            self._lock.release()


def credential_options(timeouts: tuple[float, float]) -> dict[str, Any]:
    """One token request per get_token, with the client's own timeouts: the caller's budget decides
    what happens after a failure (azure-identity would otherwise retry with back-off, seconds)."""
    connect, read = timeouts
    return {"retry_total": 0, "connection_timeout": connect, "read_timeout": read}


def client_secret_tokens(
    tenant_id: str,
    client_id: str,
    scope: str,
    client_secret: Callable[[bool], str],
    *,
    timeouts: tuple[float, float] = (3.05, 6.0),
    clock: Clock = SYSTEM,
) -> TokenSource:
    """Client credentials with the secret ``client_secret(refresh)`` reads (from Key Vault: the runtime says how);
    ``refresh``: read it again, it may have been rotated. It raises SecretUnavailable when it cannot."""

    def build(refresh_secret: bool) -> Any:
        from azure.identity import ClientSecretCredential

        try:
            secret = client_secret(refresh_secret)
        except SecretUnavailable as exc:
            raise _secret_failure(exc) from None
        # The authority follows AZURE_AUTHORITY_HOST (sovereign clouds, local stand-ins).
        return ClientSecretCredential(
            tenant_id, client_id, secret, disable_instance_discovery=True, **credential_options(timeouts)
        )

    return _guarded(scope, build, clock)


def federated_tokens(
    tenant_id: str,
    client_id: str,
    scope: str,
    managed_identity_client_id: str = "",
    *,
    timeouts: tuple[float, float] = (3.05, 6.0),
    clock: Clock = SYSTEM,
) -> TokenSource:
    """No secret: the function's managed identity is a federated credential of the app."""

    def build(_refresh_secret: bool) -> Any:
        from azure.identity import ClientAssertionCredential, ManagedIdentityCredential

        options = credential_options(timeouts)
        identity = (
            ManagedIdentityCredential(client_id=managed_identity_client_id, **options)
            if managed_identity_client_id
            else ManagedIdentityCredential(**options)
        )

        def assertion() -> str:
            return identity.get_token("api://AzureADTokenExchange/.default").token

        return ClientAssertionCredential(tenant_id, client_id, assertion, disable_instance_discovery=True, **options)

    return _guarded(scope, build, clock)


def _guarded(scope: str, build: Callable[[bool], Any], clock: Clock = SYSTEM) -> TokenSource:
    def safe_build(refresh_secret: bool) -> Any:
        try:
            return build(refresh_secret)
        except TokenError:
            raise
        except Exception as exc:
            raise classify_token_failure(exc) from None

    return TokenSource(scope, safe_build, clock)


class CallOutcome(StrEnum):
    ACCEPTED = "accepted"  # 2xx
    REJECTED = "rejected"  # Syskit Point refused the body
    UNCERTAIN = "uncertain"  # sent, and Syskit Point may have acted (no answer, 500/502/504): never re-sent
    TRANSIENT = "transient"  # Syskit Point did not act: safe to try again later
    UNAUTHORIZED = "unauthorized"  # token or consent: an admin must act
    MISCONFIGURED = "misconfigured"  # 404/405 at the provisioning endpoint: POINT_URL is wrong


@dataclass(frozen=True)
class ProvisionResult:
    outcome: CallOutcome
    http_status: int | None = None
    request_id: str | None = None
    message: str = ""
    retry_after: float | None = None
    sends: int = 0  # POSTs that left this process


def request_id_from(response: requests.Response) -> str | None:
    """Syskit does not document the response: take an id where one is present."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().strip('"')
        return text[:128] if text and len(text) <= 128 and " " not in text else None
    if isinstance(body, str | int) and not isinstance(body, bool):
        return str(body)[:128] or None
    if isinstance(body, dict):
        for key in ("requestId", "provisioningRequestId", "id", "RequestId", "Id"):
            value = body.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:128]
    return None


def error_message_from(response: requests.Response) -> str:
    """A short, safe description of Syskit Point's complaint."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason or ""
    if isinstance(body, dict):
        for key in ("message", "error", "title", "detail", "errors"):
            if key in body:
                value = body[key]
                return (value if isinstance(value, str) else str(value))[:300]
    return str(body)[:300]


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class PointClient:
    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        timeouts: tuple[float, float] = (3.05, 6.0),
        budget_seconds: float = 7.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeouts = timeouts
        self.budget = budget_seconds
        self.session = session or new_session()
        self._sleep = sleep
        self._clock = clock

    def deadline(self) -> float:
        """When an attempt that starts now must stop retrying (the clock is the client's own)."""
        return self._clock() + self.budget

    # -- provisioning -------------------------------------------------------
    def provision(self, request: ProvisioningRequest, deadline: float | None = None) -> ProvisionResult:
        """Send the request, retrying what provably did not act until ``deadline`` (default: the budget
        from now). Token requests, made before and between the POSTs, count against the same deadline."""
        url = self.base_url + request.point_path
        body = request.point_body()
        deadline = self.deadline() if deadline is None else deadline
        sends = 0
        refreshed = False
        pause = 0.25
        while True:
            try:
                token = self.tokens.token()
            except TokenError as exc:
                outcome = CallOutcome.TRANSIENT if exc.transient else CallOutcome.UNAUTHORIZED
                return ProvisionResult(outcome, message=str(exc), sends=sends)
            started = self._clock()
            try:
                response = self.session.post(url, json=body, headers=_headers(token), timeout=self.timeouts)
            except requests.exceptions.ConnectionError as exc:
                if not _never_sent(exc):
                    sends += 1
                    _log_call(request, None, started, self._clock(), "uncertain")
                    return ProvisionResult(
                        CallOutcome.UNCERTAIN,
                        message=f"no answer from Syskit Point after sending ({_describe(exc)}); not re-sent",
                        sends=sends,
                    )
                _log_call(request, None, started, self._clock(), "unreachable")
                cause = diagnose(exc, service="Syskit Point", url=url, setting="POINT_URL")
                message = cause.brief if cause else f"Syskit Point unreachable ({_describe(exc)})"
                result = ProvisionResult(CallOutcome.TRANSIENT, message=message, sends=sends)
                wait = pause
            except requests.exceptions.Timeout:
                sends += 1
                _log_call(request, None, started, self._clock(), "uncertain")
                return ProvisionResult(
                    CallOutcome.UNCERTAIN,
                    message="Syskit Point did not answer within "
                    f"{self.timeouts[1]:g} s after the request was sent; not re-sent",
                    sends=sends,
                )
            except requests.RequestException as exc:
                sends += 1
                return ProvisionResult(
                    CallOutcome.UNCERTAIN, message=f"call failed after sending ({_describe(exc)})", sends=sends
                )
            else:
                sends += 1
                status = response.status_code
                _log_call(request, status, started, self._clock(), "answered")
                if 200 <= status < 300:
                    return ProvisionResult(CallOutcome.ACCEPTED, status, request_id_from(response), sends=sends)
                if status in (401, 403) and not refreshed:
                    # 401: the secret may have been rotated. 403: consent may have been
                    # granted since the token was issued (roles are in the token).
                    refreshed = True
                    try:
                        self.tokens.refresh()
                    except TokenError as exc:
                        outcome = CallOutcome.TRANSIENT if exc.transient else CallOutcome.UNAUTHORIZED
                        return ProvisionResult(outcome, status, message=str(exc), sends=sends)
                    continue
                if status in (401, 403):
                    hint = (
                        "grant admin consent for Point.Provisioning to the app POINT_CLIENT_ID"
                        if status == 403
                        else "token refused even after re-reading the secret: "
                        "check POINT_API_APP_ID and the client secret"
                    )
                    return ProvisionResult(
                        CallOutcome.UNAUTHORIZED, status, message=f"Syskit Point answered {status}: {hint}", sends=sends
                    )
                if status in RETRYABLE_STATUSES:
                    retry_after = retry_after_seconds(response)
                    result = ProvisionResult(
                        CallOutcome.TRANSIENT,
                        status,
                        message=f"Syskit Point answered {status}: {error_message_from(response)}",
                        retry_after=retry_after,
                        sends=sends,
                    )
                    wait = retry_after if retry_after is not None else pause
                elif status >= 500:
                    return ProvisionResult(
                        CallOutcome.UNCERTAIN,
                        status,
                        message=f"Syskit Point answered {status} ({error_message_from(response)}); it may have "
                        "acted on the request, so it is not re-sent",
                        sends=sends,
                    )
                elif status in MISCONFIGURED_STATUSES:
                    return ProvisionResult(
                        CallOutcome.MISCONFIGURED,
                        status,
                        message=f"Syskit Point answered {status} to POST {url[len(self.base_url):]}: no provisioning "
                        "endpoint there; check POINT_URL",
                        sends=sends,
                    )
                else:
                    return ProvisionResult(
                        CallOutcome.REJECTED,
                        status,
                        message=f"Syskit Point refused the request ({status}): {error_message_from(response)}",
                        sends=sends,
                    )
            # Try again only if the pause and another call as long as this one fit in the budget.
            now = self._clock()
            if now + wait + (now - started) > deadline:
                return result
            self._sleep(wait)
            pause = min(pause * 2, 2.0)

    # -- other calls (operator commands, doctor) ----------------------------
    def call(self, method: str, path: str, json: Any = None) -> Any:
        refreshed = False
        while True:
            try:
                token = self.tokens.token()
            except TokenError as exc:
                # The operator's commands and doctor: the secret is named for them (never on a record or answer).
                said = str(exc.secret) if exc.secret is not None else str(exc)
                raise PointError(said, token=True, unreachable=exc.unreachable, transient=exc.transient) from None
            try:
                response = self.session.request(
                    method, self.base_url + path, json=json, headers=_headers(token), timeout=self.timeouts
                )
            except requests.RequestException as exc:
                cause = diagnose(exc, service="Syskit Point", url=self.base_url + path, setting="POINT_URL")
                message = cause.brief if cause else f"Syskit Point unreachable ({_describe(exc)})"
                raise PointError(message, unreachable=cause) from None
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.tokens.refresh()
                continue
            if response.status_code >= 400:
                raise PointError(
                    f"Syskit Point answered {response.status_code} to {method} {path}: {error_message_from(response)}",
                    response.status_code,
                )
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text

    def templates(self) -> list[dict[str, Any]]:
        listed = self.call("GET", "/v1.0/provision/templates")
        if isinstance(listed, dict):
            for key in ("value", "items", "templates", "data"):
                if isinstance(listed.get(key), list):
                    listed = listed[key]
                    break
        return [t for t in listed if isinstance(t, dict)] if isinstance(listed, list) else []

    def request_status(self, request_id: str) -> Any:
        from urllib.parse import quote

        return self.call("GET", f"/v1.0/provision/requests/{quote(request_id, safe='')}")


def new_session(*, verify: bool | str = True, trust_env: bool = True) -> requests.Session:
    """The one Session of a PointClient: kept-alive connections, no retries of its own.

    ``trust_env=False`` with ``verify`` (a CA bundle path) when the caller read the environment once
    (the runtime does: without proxy variables ``requests`` would read it again on every call).
    """
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.trust_env = trust_env
    session.verify = verify
    # Retries are decided by PointClient.provision (budget, never re-send a POST).
    adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"}


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request left."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError | ConnectTimeoutError | NameResolutionError | ConnectionRefusedError):
            return True
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            cause = reason
            continue
        cause = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else cause.__cause__
    return False


def _describe(exc: BaseException) -> str:
    return type(exc).__name__


def _log_call(request: ProvisioningRequest, status: int | None, started: float, ended: float, result: str) -> None:
    log.info(
        "point_call %s %s",
        request.workspace_type,
        status if status is not None else result,
        extra={
            "bridge_event": "point_call",
            "point_status": status or "",
            "outcome": result,
            "duration_ms": round((ended - started) * 1000, 1),
        },
    )
