"""Azure Resource Manager, as the deployer: the function app's keys and settings, and the vault's secrets.

Used by ``python -m deskbridge setup`` and ``doctor --deployed`` on the deployer's machine (or azd's
``postprovision`` hook), never by the running bridge. Every call carries the deployer's token (the
credential is handed in: azd's sign-in, ``AzureDeveloperCliCredential``), has explicit connect and read
timeouts, and is made once: a failure is an :class:`~deskbridge.errors.ArmError` saying what ARM said, and
the command that called is safe to run again.

The calls, on ``/subscriptions/{s}/resourceGroups/{g}/providers/...``:

- ``Microsoft.Web/sites/{app}/functions/{f}/listKeys`` (POST): a function's keys, by name;
- ``Microsoft.Web/sites/{app}/functions/{f}/keys/{name}`` (PUT): add a named key (ARM makes the value);
- ``Microsoft.Web/sites/{app}/config/appsettings/list`` (POST): the app's settings;
- ``Microsoft.KeyVault/vaults/{vault}/secrets/{name}`` (PUT): a secret, through the control plane, as the
  template's own deployment writes them (the deployer needs no data role on the vault, and it works when the
  vault's public network access is off).
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Protocol
from urllib.parse import quote

import requests

from deskbridge.causes import diagnose
from deskbridge.errors import ArmError, transient_status

__all__ = ["ArmClient", "ArmError", "DEFAULT_MANAGEMENT_SCOPE", "DEFAULT_MANAGEMENT_URL"]

DEFAULT_MANAGEMENT_URL = "https://management.azure.com"
DEFAULT_MANAGEMENT_SCOPE = "https://management.azure.com/.default"  # the token's audience (public cloud)
WEB_API_VERSION = "2024-11-01"  # Microsoft.Web (sites, functions, config)
VAULT_API_VERSION = "2023-07-01"  # Microsoft.KeyVault (the same version infra/app/keyvault.bicep deploys with)
TIMEOUTS = (5.0, 60.0)  # seconds to connect, to read: ARM answers a key or settings call in about a second
# Keys listed by ARM that are not keys: the resource's own fields when the answer is not wrapped in properties.
_NOT_KEYS = frozenset({"id", "name", "type", "location", "kind"})


class TokenCredentialLike(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class ArmClient:
    """One function app and its resource group, as the deployer sees them through ARM."""

    def __init__(
        self,
        credential: TokenCredentialLike,
        subscription_id: str,
        resource_group: str,
        app_name: str,
        *,
        management_url: str = DEFAULT_MANAGEMENT_URL,
        scope: str = DEFAULT_MANAGEMENT_SCOPE,
        session: requests.Session | None = None,
        timeouts: tuple[float, float] = TIMEOUTS,
    ) -> None:
        self._credential = credential
        self._base = management_url.rstrip("/")
        self._scope = scope
        self._cached: Any = None  # the last AccessToken
        self._group = (
            f"/subscriptions/{quote(subscription_id, safe='')}/resourceGroups/{quote(resource_group, safe='')}"
        )
        self._site = f"{self._group}/providers/Microsoft.Web/sites/{quote(app_name, safe='')}"
        self._session = session or requests.Session()
        self._timeouts = timeouts
        self.app_name = app_name

    # -- the function app --------------------------------------------------------
    def function_keys(self, function: str) -> dict[str, str]:
        """The keys of one function, by name (values included: the caller never prints them)."""
        answer = self._call("POST", f"{self._site}/functions/{quote(function, safe='')}/listKeys", WEB_API_VERSION)
        return _string_dictionary(answer)

    def add_function_key(self, function: str, name: str) -> str:
        """Add the key ``name`` to ``function``; returns its value, as ARM says it holds it.

        The body is ARM's KeyInfo (``name``, ``value``), with a value made here (URL-safe, 54 characters,
        from the OS's random source): the key works in a query string, and does not depend on ARM making
        one. The value returned is the one ARM answers with (or lists), never assumed.
        """
        path = f"{self._site}/functions/{quote(function, safe='')}/keys/{quote(name, safe='')}"
        proposed = secrets.token_urlsafe(40)
        answer = self._call("PUT", path, WEB_API_VERSION, {"name": name, "value": proposed})
        value = _key_value(answer)
        if not value:
            # An answer without the value: read it back.
            value = self.function_keys(function).get(name, "")
        if not value:
            raise ArmError(
                f"ARM made the key {name} of function {function} but did not say its value",
                transient=True,
                http_status=200,
            )
        return value

    def app_settings(self) -> dict[str, str]:
        """The running app's settings, by name (values included: the caller never prints them)."""
        return _string_dictionary(self._call("POST", f"{self._site}/config/appsettings/list", WEB_API_VERSION))

    # -- the vault -----------------------------------------------------------------
    def set_secret(self, vault_name: str, name: str, value: str) -> None:
        """Write a secret (a new version) in the vault ``vault_name`` of this resource group."""
        path = (
            f"{self._group}/providers/Microsoft.KeyVault/vaults/{quote(vault_name, safe='')}"
            f"/secrets/{quote(name, safe='')}"
        )
        self._call("PUT", path, VAULT_API_VERSION, {"properties": {"value": value, "contentType": "text/plain"}})

    # -- the one way every call is made ------------------------------------------------
    def _token(self) -> str:
        """The deployer's token, asked once and kept until five minutes before it expires: azd is a program
        started for each request (about a second), and setup makes a dozen calls."""
        cached = self._cached
        if cached is not None and cached.expires_on - 300 > time.time():
            return cached.token
        try:
            self._cached = self._credential.get_token(self._scope)
            return self._cached.token
        except Exception as exc:  # azure-identity's errors: azd missing, not signed in, expired sign-in
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ArmError(
                f"no Azure Resource Manager token from the azd sign-in: {first}", transient=False, token=True
            ) from None

    def _call(self, method: str, path: str, api_version: str, body: Any = None) -> Any:
        url = f"{self._base}{path}"
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        try:
            response = self._session.request(
                method, url, params={"api-version": api_version}, json=body, headers=headers, timeout=self._timeouts
            )
        except requests.RequestException as exc:
            cause = diagnose(exc, service="Azure Resource Manager", url=url)
            raise ArmError(
                cause.brief if cause else f"Azure Resource Manager unreachable ({type(exc).__name__})",
                transient=True,
                unreachable=cause,
            ) from None
        if response.status_code >= 400:
            code, message = _arm_error(response)
            raise ArmError(
                f"Azure Resource Manager answered {response.status_code} to {method} "
                f"{path.rsplit('/providers/', 1)[-1]}: {code or 'no code'}: {message}",
                transient=transient_status(response.status_code),
                http_status=response.status_code,
                code=code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ArmError(
                f"Azure Resource Manager answered {response.status_code} with a body that is not JSON",
                transient=True,
                http_status=response.status_code,
            ) from None


def _string_dictionary(answer: Any) -> dict[str, str]:
    """ARM's StringDictionary (``{"properties": {...}}``), or the flat form some endpoints answer with."""
    if not isinstance(answer, dict):
        return {}
    inner = answer.get("properties")
    source = inner if isinstance(inner, dict) else {k: v for k, v in answer.items() if k not in _NOT_KEYS}
    return {str(k): v for k, v in source.items() if isinstance(v, str)}


def _key_value(answer: Any) -> str:
    if not isinstance(answer, dict):
        return ""
    inner = answer.get("properties") if isinstance(answer.get("properties"), dict) else answer
    value = inner.get("value")
    return value if isinstance(value, str) else ""


def _arm_error(response: requests.Response) -> tuple[str, str]:
    """ARM's error code and message (``{"error": {"code", "message"}}``), shortened; never a request body."""
    try:
        body = response.json()
    except ValueError:
        return "", (response.text or "").strip().splitlines()[0][:200] if response.text else "no detail"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    return "", str(body)[:200]


def health_status(
    url: str, *, session: requests.Session | None = None, timeouts: tuple[float, float] = (5.0, 30.0)
) -> int | None:
    """The deployed app's anonymous health route (``/api/health``, not ARM): its status, None without answer.

    Here because only setup and ``doctor --deployed`` ask it, with the deployer's ARM calls; no token is sent.
    """
    try:
        return (session or requests.Session()).get(url, timeout=timeouts, allow_redirects=False).status_code
    except requests.RequestException:
        return None
