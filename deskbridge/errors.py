"""What the adapters raise when a remote service fails: one small hierarchy, told apart by type.

Every adapter (Key Vault, Entra ID and Syskit Point, Azure Storage, Jira,
ServiceNow, a caller's callback URL) raises a subclass of :class:`RemoteError`,
and every one says the same three things:

- ``transient``: trying again later may work (nothing to fix);
- ``http_status``: the service's answer, or None when there was none;
- ``unreachable``: when there was no answer, why (:mod:`deskbridge.causes`), if known.

Callers decide on those attributes and on the type, never by looking for
attributes that may be missing. The classes live here, below the adapters, so
a use case can catch a Key Vault failure without importing Key Vault's client,
and one adapter can pass another's failure on (the Syskit Point token needs
the client secret) without importing it.
"""

from __future__ import annotations

from deskbridge.causes import Unreachable


class RemoteError(Exception):
    """A remote service failed."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        http_status: int | None = None,
        unreachable: Unreachable | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.http_status = http_status
        self.unreachable = unreachable
        self.detail = detail  # the service's own words about it (Jira's errorMessages), shortened; never a secret


def transient_status(status: int | None) -> bool:
    """The usual reading of an HTTP answer: no answer, a timeout, throttling or a server error may pass."""
    return status is None or status in (408, 425, 429) or status >= 500


class SecretUnavailable(RemoteError):
    """Key Vault could not give the secret."""

    def __init__(
        self,
        name: str,
        reason: str,
        transient: bool,
        unreachable: Unreachable | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(
            f"Key Vault secret {name!r}: {reason}",
            transient=transient,
            http_status=http_status,
            unreachable=unreachable,
        )
        self.name = name
        self.reason = reason

    @property
    def public(self) -> str:
        """What failed, for an answer or a record the status route shows: the reason, never the secret's name
        (the log keeps the whole message)."""
        return f"a secret the bridge needs could not be read from Key Vault: {self.reason}"


class TokenError(RemoteError):
    """No token for Syskit Point. ``kind``: invalid_client (the secret may have been rotated), config or transient."""

    def __init__(
        self, message: str, kind: str, unreachable: Unreachable | None = None, secret: SecretUnavailable | None = None
    ) -> None:
        super().__init__(message, transient=kind == "transient", unreachable=unreachable)
        self.kind = kind
        # The Key Vault failure behind it, if that was the cause: its name is for the operator's terminal and the
        # log, while the message (kept on the record the status route shows) says only what failed.
        self.secret = secret


class PointError(RemoteError):
    """A Syskit Point call other than provisioning (templates, webhooks, options) failed.

    ``token``: no call was made, because there was no token (Key Vault, Entra ID).
    """

    def __init__(
        self,
        message: str,
        http_status: int | None = None,
        *,
        token: bool = False,
        unreachable: Unreachable | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(
            message,
            transient=transient_status(http_status) if transient is None else transient,
            http_status=http_status,
            unreachable=unreachable,
        )
        self.token = token


class StorageError(RemoteError):
    """Azure Storage (the ledger's tables, the queues) failed, or holds no such table or queue (``missing``)."""

    MAKE_IT = "python -m deskbridge doctor creates the bridge's tables and queues (the infra templates do in Azure)"

    def __init__(self, message: str, *, transient: bool, http_status: int | None = None, missing: str = "") -> None:
        super().__init__(message, transient=transient, http_status=http_status)
        self.missing = missing  # the table or queue that does not exist

    @classmethod
    def from_sdk(cls, exc: Exception, what: str, kind: str, name: str, missing_code: str) -> StorageError:
        """An Azure Storage SDK error as a StorageError: the table or queue ``name`` missing (the service's
        ``x-ms-error-code`` is ``missing_code``, e.g. TableNotFound), else ``what`` failed, transient by status.

        Read by attribute, so this module needs no Azure SDK: ``status_code`` and ``response`` are
        those of azure-core's HttpResponseError, absent on a transport failure."""
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        if response is not None and response.headers.get("x-ms-error-code") == missing_code:
            return cls(f"the {kind} {name} does not exist: {cls.MAKE_IT}", transient=True, http_status=status,
                       missing=name)
        return cls(f"{what} failed ({type(exc).__name__}{f' {status}' if status else ''})",
                   transient=transient_status(status), http_status=status)


class DeskError(RemoteError):
    """A service desk's API (or a caller's callback URL) refused or could not be reached."""


class JiraError(DeskError):
    """Jira answered with an error or could not be reached (``detail``: Jira's own errorMessages, if any)."""


class ServiceNowError(DeskError):
    """ServiceNow answered with an error or could not be reached (``detail``: its error message and detail)."""


class CallbackError(DeskError):
    """A caller's callback URL did not accept the outcome."""


class ArmError(RemoteError):
    """Azure Resource Manager refused or did not answer a call (function keys, app settings, the vault's secrets).

    ``code`` is ARM's own error code (``AuthorizationFailed``, ``ResourceNotFound``...) when it gave one;
    ``token``: the failure was getting the deployer's token (azd not signed in), not the call itself.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        http_status: int | None = None,
        unreachable: Unreachable | None = None,
        code: str = "",
        token: bool = False,
    ) -> None:
        super().__init__(message, transient=transient, http_status=http_status, unreachable=unreachable)
        self.code = code
        self.token = token
