"""Key Vault reads with an in-process TTL cache.

One :class:`SecretCache` per worker process wraps one ``SecretClient``.
A secret is read once, kept for the TTL, and re-read on demand when the
caller has reason to believe it was rotated (a 401 from Syskit Point, an
``invalid_client`` from Entra ID). When the TTL has passed and Key Vault
cannot be reached, the last value read keeps being used, with a warning
each time, for at most the stale limit (BRIDGE_SECRET_STALE_SECONDS).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from deskbridge import telemetry
from deskbridge.causes import diagnose
from deskbridge.errors import SecretUnavailable

__all__ = ["Secret", "SecretCache", "SecretReader", "SecretUnavailable"]

log = telemetry.logger("deskbridge.secrets")


@dataclass(frozen=True)
class Secret:
    name: str
    value: str
    expires_on: datetime | None
    read_at: float

    def __repr__(self) -> str:  # never show the value
        return f"Secret(name={self.name!r}, expires_on={self.expires_on!r})"


class SecretReader(Protocol):
    """What the cache needs of azure-keyvault-secrets' ``SecretClient``."""

    vault_url: str

    def get_secret(self, name: str, **kwargs: Any) -> Any: ...


_RETRY_VAULT_AFTER = 30.0  # seconds: while a stale value is in use, ask Key Vault again this often at most


class SecretCache:
    def __init__(
        self,
        client: SecretReader,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_read: Callable[[Secret], None] | None = None,
        stale_seconds: float = 0.0,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._stale = stale_seconds
        self._clock = clock
        self._on_read = on_read  # called after each Key Vault read (the expiry warning), never on a cache hit
        self._cache: dict[str, Secret] = {}
        self._failed_at: dict[str, float] = {}  # the last failed read while a stale value was in use
        self._lock = threading.Lock()
        self.reads = 0  # Key Vault round trips, for tests and benchmarks

    def get(self, name: str, *, refresh: bool = False) -> Secret:
        seen = self._cache.get(name)
        if seen and not refresh and self._fresh(seen):
            return seen
        with self._lock:  # one Key Vault read for many concurrent callers
            current = self._cache.get(name)
            if current is not None and (current is not seen or not refresh) and self._fresh(current):
                return current  # fresh, or re-read by another thread while this one waited
            if current is not None and not refresh and self._usable_stale(current):
                failed_at = self._failed_at.get(name)
                if failed_at is not None and self._clock() - failed_at < _RETRY_VAULT_AFTER:
                    return self._stale_value(current, "Key Vault failed moments ago")
            try:
                secret = self._read(name)
            except SecretUnavailable as exc:
                if current is None or refresh or not exc.transient or not self._usable_stale(current):
                    raise
                self._failed_at[name] = self._clock()
                return self._stale_value(current, exc.reason)
            self._failed_at.pop(name, None)
            self._cache[name] = secret
        if self._on_read is not None:
            try:
                self._on_read(secret)
            except Exception as exc:  # a failing check must never fail the read
                log.error("after-read check failed for Key Vault secret %s (%s)", name, type(exc).__name__)
        return secret

    def _fresh(self, secret: Secret) -> bool:
        return self._clock() - secret.read_at < self._ttl

    def _usable_stale(self, secret: Secret) -> bool:
        return self._clock() - secret.read_at < self._ttl + self._stale

    def _stale_value(self, secret: Secret, reason: str) -> Secret:
        age = self._clock() - secret.read_at
        log.warning(
            "Key Vault secret %s could not be read again (%s); using the value read %d s ago (stale limit %d s)",
            secret.name,
            reason,
            age,
            self._ttl + self._stale,
            extra={"bridge_event": "secret", "secret_name": secret.name, "outcome": "stale"},
        )
        return secret

    def value(self, name: str, *, refresh: bool = False) -> str:
        return self.get(name, refresh=refresh).value

    def values(self, names: tuple[str, ...], *, refresh: bool = False) -> list[str]:
        return [self.value(name, refresh=refresh) for name in names]

    def cached(self) -> list[Secret]:
        return list(self._cache.values())

    def recheck(self) -> int:
        """Hand every cached secret to the on_read callback again (the daily expiry check); no vault call."""
        secrets = self.cached()
        if self._on_read is not None:
            for secret in secrets:
                self._on_read(secret)
        return len(secrets)

    def _read(self, name: str) -> Secret:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        self.reads += 1
        try:
            bundle = self._client.get_secret(name)
        except ResourceNotFoundError:
            raise SecretUnavailable(
                name, "not found in the vault (check the *_SECRET_NAME setting)", False, http_status=404
            ) from None
        except ClientAuthenticationError as exc:
            # The identity could not sign in; when its authority could not be reached, say why.
            authority = os.environ.get("AZURE_AUTHORITY_HOST", "")
            cause = diagnose(
                exc, service="Entra ID (signing in to Key Vault)", url=authority, setting="AZURE_AUTHORITY_HOST"
            )
            reason = cause.brief if cause else f"authentication to Key Vault failed ({_first_line(exc)})"
            raise SecretUnavailable(name, reason, True, cause) from None
        except HttpResponseError as exc:
            status = exc.status_code
            if status == 403:
                raise SecretUnavailable(
                    name, "access denied: give the function's identity the Key Vault Secrets User role", True,
                    http_status=403,
                ) from None
            raise SecretUnavailable(name, f"Key Vault answered {status}", True, http_status=status) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            cause = diagnose(exc, service="Key Vault", url=self._client.vault_url, setting="KEY_VAULT_URL")
            reason = cause.brief if cause else f"Key Vault unreachable ({type(exc).__name__})"
            raise SecretUnavailable(name, reason, True, cause) from None
        value = bundle.value or ""
        if not value:
            raise SecretUnavailable(name, "the secret is empty", False)
        return Secret(name=name, value=value, expires_on=bundle.properties.expires_on, read_at=self._clock())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
