"""Warn before a Key Vault secret runs out.

Key Vault keeps an expiry date (``exp``) with each secret; :class:`SecretCache`
gets it with the value. :class:`ExpiryWatch` is called after each actual Key
Vault read (never on a cache hit, never with an extra call) and logs, at most
once a day per secret and process, a WARNING when the secret expires within
``BRIDGE_SECRET_EXPIRY_WARNING_DAYS`` and an ERROR once it has expired. The
log line names the secret and the date, never the value, and carries
``bridge_event=secret_expiry`` for the workbook and the alert.

``doctor`` shows every configured secret's expiry, including those that
have none (:func:`report`).

No I/O here: the runtime hands an :class:`ExpiryWatch` to the secret cache,
and :func:`report` reads the secrets through the function it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from deskbridge import telemetry
from deskbridge.clock import SYSTEM
from deskbridge.errors import RemoteError
from deskbridge.settings import ConfigurationError, Settings

if TYPE_CHECKING:  # for type checkers only: nothing to build at run time
    from typing import Protocol

    class ExpiringSecret(Protocol):
        """What the watch needs of a secret read from Key Vault (deskbridge.secrets.Secret): never its value."""

        @property
        def name(self) -> str: ...

        @property
        def expires_on(self) -> datetime | None: ...

log = telemetry.logger("deskbridge.expiry")

EVENT = "secret_expiry"
REPEAT_AFTER = timedelta(days=1)
DEFAULT_WARNING_DAYS = 30

# Settings that name Key Vault secrets; the comma-separated ones hold two names during a rotation.
SECRET_NAME_SETTINGS = (
    "POINT_CLIENT_SECRET_NAME",
    "POINT_WEBHOOK_KEY_SECRET_NAME",
    "JIRA_API_TOKEN_SECRET_NAME",
    "JIRA_WEBHOOK_SECRET_NAME",
    "SERVICENOW_PASSWORD_SECRET_NAME",
    "SERVICENOW_TOKEN_SECRET_NAME",
    "SERVICENOW_SIGNING_SECRET_NAME",
    "PROVISION_SIGNING_SECRET_NAME",
)


class ExpiryState(StrEnum):
    OK = "ok"
    EXPIRING = "expiring"  # within the warning window
    EXPIRED = "expired"
    NO_EXPIRY = "no_expiry"  # Key Vault has no expiry date for it


@dataclass(frozen=True)
class Expiry:
    name: str
    state: ExpiryState
    expires_on: datetime | None
    days_left: int | None  # calendar days (UTC) until the expiry date; negative once past

    @property
    def date(self) -> str:
        return self.expires_on.date().isoformat() if self.expires_on else ""


def assess(name: str, expires_on: datetime | None, now: datetime, warning_days: int) -> Expiry:
    """Where a secret stands against its expiry date."""
    if expires_on is None:
        return Expiry(name, ExpiryState.NO_EXPIRY, None, None)
    if expires_on.tzinfo is None:
        expires_on = expires_on.replace(tzinfo=UTC)
    expires_on = expires_on.astimezone(UTC)
    days_left = (expires_on.date() - now.astimezone(UTC).date()).days
    if expires_on <= now:
        state = ExpiryState.EXPIRED
    elif days_left <= warning_days:
        state = ExpiryState.EXPIRING
    else:
        state = ExpiryState.OK
    return Expiry(name, state, expires_on, days_left)


class ExpiryWatch:
    """The ``on_read`` callback of :class:`SecretCache`: logs expiring and expired secrets, once a day each."""

    def __init__(self, warning_days: int | Callable[[], int] = DEFAULT_WARNING_DAYS,
                 now: Callable[[], datetime] = SYSTEM.now) -> None:
        self._warning_days = warning_days
        self.now = now
        self._logged: dict[tuple[str, ExpiryState], datetime] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, now: Callable[[], datetime] = SYSTEM.now) -> ExpiryWatch:
        def warning_days() -> int:
            try:
                return settings.secret_expiry_warning_days
            except ConfigurationError:  # doctor reports the setting; keep warning meanwhile
                return DEFAULT_WARNING_DAYS

        return cls(warning_days, now)

    @property
    def warning_days(self) -> int:
        days = self._warning_days
        return days() if callable(days) else days

    def __call__(self, secret: ExpiringSecret) -> None:
        if secret.expires_on is None:
            return  # doctor says so; nothing to warn about every day
        now = self.now()
        expiry = assess(secret.name, secret.expires_on, now, self.warning_days)
        if expiry.state not in (ExpiryState.EXPIRING, ExpiryState.EXPIRED):
            return
        key = (secret.name, expiry.state)
        with self._lock:
            last = self._logged.get(key)
            if last is not None and now - last < REPEAT_AFTER:
                return
            self._logged[key] = now
        extra = {
            "bridge_event": EVENT,
            "secret_name": secret.name,
            "expires_on": expiry.expires_on.isoformat() if expiry.expires_on else "",
            "days_left": expiry.days_left,
        }
        if expiry.state == ExpiryState.EXPIRED:
            log.error(
                "Key Vault secret %s expired on %s: renew it at its source and put the new value in Key Vault "
                "with the new expiry date",
                secret.name,
                expiry.date,
                extra=extra,
            )
        else:
            log.warning(
                "Key Vault secret %s expires on %s (%d days left): renew it at its source and put the new value "
                "in Key Vault with the new expiry date",
                secret.name,
                expiry.date,
                expiry.days_left,
                extra=extra,
            )


def configured_secrets(settings: Settings) -> list[tuple[str, str]]:
    """(setting, secret name) for every secret the settings name; no client secret in federated mode."""
    try:
        federated = settings.point_auth_mode == "federated"
    except ConfigurationError:
        federated = False
    found: list[tuple[str, str]] = []
    for setting in SECRET_NAME_SETTINGS:
        if setting == "POINT_CLIENT_SECRET_NAME" and federated:
            continue
        for name in settings.raw(setting).split(","):
            if name.strip():
                found.append((setting, name.strip()))
    return found


# -- doctor ------------------------------------------------------------------------

_ORDER = (ExpiryState.EXPIRED, ExpiryState.EXPIRING, ExpiryState.NO_EXPIRY, ExpiryState.OK)


def describe(expiry: Expiry) -> str:
    if expiry.state == ExpiryState.EXPIRED:
        return f"{expiry.name} EXPIRED on {expiry.date}"
    if expiry.state == ExpiryState.EXPIRING:
        return f"{expiry.name} expires on {expiry.date} ({expiry.days_left} days left)"
    if expiry.state == ExpiryState.NO_EXPIRY:
        return f"{expiry.name} has no expiry date"
    return f"{expiry.name} expires on {expiry.date}"


class Report:
    """What doctor says about the configured secrets' expiry: ``state`` is ok, warn, fail or skip."""

    __slots__ = ("state", "message", "hint")

    def __init__(self, state: str, message: str, hint: str = "") -> None:
        self.state, self.message, self.hint = state, message, hint


def report(settings: Settings, read: Callable[[str], ExpiringSecret], now: datetime | None = None) -> Report:
    """Every configured secret's expiry date; ``read`` gets a secret (doctor's cache, filled by its checks)."""
    days = settings.secret_expiry_warning_days
    point_secret = "" if settings.point_auth_mode == "federated" else settings.point_client_secret_name
    now = now or SYSTEM.now()
    found: list[Expiry] = []
    unread: list[str] = []
    for _setting, name in configured_secrets(settings):
        try:
            secret = read(name)
        except RemoteError:
            unread.append(name)  # the secret checks say why
            continue
        found.append(assess(name, secret.expires_on, now, days))
    if unread and not found:
        return Report("skip", "no secret could be read from Key Vault; see the checks above")
    found.sort(key=lambda e: (_ORDER.index(e.state), e.days_left if e.days_left is not None else 0))
    parts = [describe(e) for e in found] + [f"{name} could not be read" for name in unread]
    if not point_secret:
        parts.insert(0, "POINT_AUTH_MODE=federated: no client secret to expire")
    message = "; ".join(parts) or "no secret is configured"
    states = {e.state for e in found}
    point_state = next((e.state for e in found if point_secret and e.name == point_secret), None)
    hints = []
    if states & {ExpiryState.EXPIRED, ExpiryState.EXPIRING}:
        where = (" (the Point client secret: app POINT_CLIENT_ID > Certificates & secrets)"
                 if point_state in (ExpiryState.EXPIRED, ExpiryState.EXPIRING) else "")
        hints.append(f"renew before the date: create a new credential at its source{where}, put it in Key Vault "
                     "with its new expiry date")
    if ExpiryState.NO_EXPIRY in states:
        match = " (the Point client secret: the Entra ID client secret's Expires date)" if (
            point_state == ExpiryState.NO_EXPIRY) else ""
        hints.append(f"set each secret's expiry date in Key Vault to the end date of the credential it holds{match}, "
                     "e.g. az keyvault secret set-attributes --vault-name <vault> --name <secret> --expires <date>; "
                     f"the bridge then warns {days} days ahead (BRIDGE_SECRET_EXPIRY_WARNING_DAYS)")
    if point_state not in (None, ExpiryState.OK):
        hints.append("or have no client secret at all: POINT_AUTH_MODE=federated (README, secretless mode)")
    hint = "; ".join(hints)
    if ExpiryState.EXPIRED in states:
        return Report("fail", message, hint)
    if states & {ExpiryState.EXPIRING, ExpiryState.NO_EXPIRY}:
        return Report("warn", message, hint)
    return Report("ok", message + (f" (all more than {days} days away)" if found else ""))
