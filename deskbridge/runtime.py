"""The composition root: the one place where long-lived clients are built, lazily, once per process.

Every adapter (Key Vault, Syskit Point, tables, queues, desk APIs) is made on
first use from the settings, with everything it works with handed to its
constructor (the clock, the secret reader, the HTTP session and its trust
settings), so importing the function app never touches the network or fails
on a setting, and nothing is patched after it is built. Building a client
makes no call: the tables and queues are created by :meth:`Runtime.ensure_storage`,
an explicit step (doctor runs it and says what it did; in Azure the infra
templates create them). Tests build a fresh :class:`Runtime` from their own
environment with :func:`reset`.

The use cases and entry points import this module; it imports only the
adapters and the pure modules below them.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from deskbridge.causes import is_loopback
from deskbridge.clock import SYSTEM, Clock
from deskbridge.settings import STORAGE_NOT_SET, ConfigurationError, Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.storage.queue import QueueClient

    from deskbridge.desks.callback import CallbackClient
    from deskbridge.desks.jira_client import JiraClient
    from deskbridge.desks.servicenow_client import ServiceNowClient
    from deskbridge.ledger import Deliveries, Ledger
    from deskbridge.point import PointClient
    from deskbridge.queues import WorkQueue
    from deskbridge.secrets import SecretCache

T = TypeVar("T")


class lazy(Generic[T]):
    """Like ``cached_property``, but two threads never build the same client twice."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __get__(self, owner: Any, cls: type | None = None) -> T:
        if owner is None:
            return self  # type: ignore[return-value]
        # After the first build the instance attribute shadows this descriptor: no call at all.
        with owner._lock:
            if self.name not in owner.__dict__:  # None is a result too (a desk that is not configured)
                owner.__dict__[self.name] = self._build(owner)
            return owner.__dict__[self.name]


# Seconds to connect to Azure Storage and to wait for an answer: a table or queue call answers in
# milliseconds; a page of a large query (the reconciler's sweep, pruning) takes longer, never this long.
STORAGE_TIMEOUTS = (3.05, 20.0)
# The same for Key Vault: a secret read answers in milliseconds, and an approval may be waiting on it (its
# Syskit Point token needs the client secret), so it fails over to a stale value or the queue soon.
VAULT_TIMEOUTS = (3.05, 6.0)


def _fail_fast(endpoint: str) -> dict[str, Any]:
    """SDK retry options for an endpoint on this machine: no retry of a failed connection.

    A refused connection or an untrusted certificate on loopback (a local stand-in or Azurite
    that is not running, the wrong CA bundle) does not heal in the seconds the SDK's retries
    wait; retrying only hides the cause. Answers that did arrive are retried as anywhere else.
    """
    return {"retry_connect": 0} if _on_this_machine(endpoint) else {}


def _on_this_machine(endpoint: str) -> bool:
    """A URL, or a storage connection string, naming this machine."""
    if "=" not in endpoint:
        return is_loopback(endpoint)
    parts = dict(part.split("=", 1) for part in endpoint.split(";") if "=" in part)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        return True
    urls = [value for key, value in parts.items() if key.endswith("Endpoint")]
    return bool(urls) and all(is_loopback(url) for url in urls)


class Transport:
    """How HTTP clients find proxies and trust certificates, read from the environment once.

    With ``trust_env`` ``requests`` scans every environment variable for proxies and looks for a
    .netrc on each request: about 0.25 ms a call, more with the hundred-odd variables of a Functions
    worker. Without proxy variables all it would find is a CA bundle, handed over here instead. With
    a proxy (or NO_PROXY) set, the clients keep their per-call logic (``from_environment`` is None).
    """

    __slots__ = ("ca_bundle",)

    def __init__(self, ca_bundle: str = "") -> None:
        self.ca_bundle = ca_bundle  # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE; "" for certifi's

    @classmethod
    def from_environment(cls) -> Transport | None:
        from urllib.request import getproxies

        if getproxies():
            return None
        return cls(os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or "")

    def sdk_options(self) -> dict[str, Any]:
        """For azure-core's RequestsTransport: environment not read per call, the bundle given."""
        return {"use_env_settings": False} | ({"connection_verify": self.ca_bundle} if self.ca_bundle else {})


class StorageReport:
    """What :meth:`Runtime.ensure_storage` found: every table and queue, and those it created."""

    __slots__ = ("tables", "queues", "created")

    def __init__(self, tables: tuple[str, ...], queues: tuple[str, ...], created: tuple[str, ...]) -> None:
        self.tables, self.queues, self.created = tables, queues, created


class Runtime:
    """Builds each client once and hands collaborators in: the settings, the clock, the adapters.

    ``sdk_options`` go to every Azure SDK client it builds (tests pass ``retry_total=0`` so that a
    failure reaches the bridge's own handling instead of the SDK's back-off).
    """

    def __init__(
        self, settings: Settings | None = None, clock: Clock = SYSTEM, sdk_options: Mapping[str, Any] | None = None
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock
        self.sdk_options = dict(sdk_options or {})
        self._lock = threading.RLock()
        self._storage_ready: StorageReport | None = None

    def built(self, name: str) -> bool:
        """Whether the client ``name`` (e.g. "secrets") was built in this process (nothing is built to find out)."""
        if not isinstance(getattr(type(self), name, None), lazy):
            raise AttributeError(f"Runtime builds no {name!r}")
        return name in vars(self)

    def forget(self, name: str) -> None:
        """Drop a built client (after its secret was rotated): the next use builds it again."""
        with self._lock:
            vars(self).pop(name, None)

    @functools.cached_property
    def transport(self) -> Transport | None:
        """Proxy and CA settings, read from the environment once per runtime (every client shares them)."""
        return Transport.from_environment()

    # -- Azure identity and Key Vault ---------------------------------------
    @lazy
    def azure_credential(self) -> TokenCredential:
        """DefaultAzureCredential: managed identity in Azure, AZURE_* variables elsewhere."""
        from azure.identity import DefaultAzureCredential

        # Instance discovery is skipped: the authority is whatever AZURE_AUTHORITY_HOST says.
        return DefaultAzureCredential(
            exclude_interactive_browser_credential=True,
            disable_instance_discovery=True,
            **_fail_fast(os.environ.get("AZURE_AUTHORITY_HOST", "")),
        )

    @lazy
    def secrets(self) -> SecretCache:
        """Key Vault reads with the TTL cache; each read from the vault is checked for an expiry date."""
        from azure.keyvault.secrets import SecretClient

        from deskbridge.expiry import ExpiryWatch
        from deskbridge.secrets import SecretCache

        s = self.settings
        vault = s.key_vault_url
        connect, read = VAULT_TIMEOUTS
        # A vault on loopback is the local stand-in; the SDK would refuse its challenge.
        options = {
            "retry_total": 1,  # a desk waits for the answer: fail over to a stale value or the queue quickly
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 1,
            "connection_timeout": connect,
            "read_timeout": read,
        } | _fail_fast(vault) | self.sdk_options
        loopback = is_loopback(vault)
        client = SecretClient(vault, self.azure_credential, verify_challenge_resource=not loopback, **options)
        return SecretCache(
            client,
            s.secret_ttl,
            clock=self.clock.monotonic,
            on_read=ExpiryWatch.from_settings(s, now=self.clock.now),
            stale_seconds=s.secret_stale,
        )

    # -- Syskit Point --------------------------------------------------------
    @lazy
    def point(self) -> PointClient:
        from deskbridge.point import PointClient, client_secret_tokens, federated_tokens, new_session

        s = self.settings
        options = {"timeouts": s.point_timeouts, "clock": self.clock}
        if s.point_auth_mode == "federated":
            tokens = federated_tokens(
                s.point_tenant_id, s.point_client_id, s.point_scope, s.environ("AZURE_CLIENT_ID"), **options
            )
        else:
            name = s.point_client_secret_name

            def client_secret(refresh: bool) -> str:
                return self.secrets.value(name, refresh=refresh)

            tokens = client_secret_tokens(s.point_tenant_id, s.point_client_id, s.point_scope, client_secret, **options)
        transport = self.transport  # the environment's CA bundle, read once (see Transport)
        session = new_session(verify=transport.ca_bundle or True, trust_env=False) if transport else new_session()
        return PointClient(
            s.point_url,
            tokens,
            timeouts=s.point_timeouts,
            budget_seconds=s.point_retry_budget,
            session=session,
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
        )

    # -- storage ------------------------------------------------------------
    def _storage_options(self, endpoint: str) -> dict[str, Any]:
        transport = self.transport
        connect, read = STORAGE_TIMEOUTS
        timeouts = {"connection_timeout": connect, "read_timeout": read}
        return timeouts | (transport.sdk_options() if transport else {}) | _fail_fast(endpoint) | self.sdk_options

    def _table(self, name: str) -> TableClient:
        from azure.data.tables import TableClient

        connection = self.settings.storage_connection_string
        endpoint = connection or self.settings.storage_service_uri("table")
        options = self._storage_options(endpoint)
        if connection:
            return TableClient.from_connection_string(connection, table_name=name, **options)
        if not endpoint:
            raise ConfigurationError("AzureWebJobsStorage", STORAGE_NOT_SET)
        return TableClient(endpoint=endpoint, table_name=name, credential=self.storage_credential, **options)

    def _queue(self, name: str) -> QueueClient:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        # The Functions queue trigger expects base64 (host.json messageEncoding).
        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        connection = self.settings.storage_connection_string
        endpoint = connection or self.settings.storage_service_uri("queue")
        options = self._storage_options(endpoint)
        if connection:
            return QueueClient.from_connection_string(connection, name, **policies, **options)
        if not endpoint:
            raise ConfigurationError("AzureWebJobsStorage", STORAGE_NOT_SET)
        return QueueClient(endpoint, name, credential=self.storage_credential, **policies, **options)

    @lazy
    def storage_credential(self) -> TokenCredential:
        """The identity named by AzureWebJobsStorage__clientId, as the Functions host uses it."""
        client_id = self.settings.environ("AzureWebJobsStorage__clientId")
        if client_id:
            from azure.identity import ManagedIdentityCredential

            return ManagedIdentityCredential(client_id=client_id)
        return self.azure_credential

    @lazy
    def ledger(self) -> Ledger:
        from deskbridge.ledger import Ledger

        return Ledger(self._table(self.settings.ledger_table), self.clock)

    @lazy
    def deliveries(self) -> Deliveries:
        from deskbridge.ledger import Deliveries

        return Deliveries(self._table(self.settings.deliveries_table), self.clock)

    @lazy
    def retry_queue(self) -> WorkQueue:
        from deskbridge.queues import WorkQueue

        s = self.settings
        return WorkQueue(self._queue(s.retry_queue), self._queue(s.retry_poison_queue))

    @lazy
    def desk_queue(self) -> WorkQueue:
        from deskbridge.queues import WorkQueue

        s = self.settings
        return WorkQueue(self._queue(s.desk_queue), self._queue(s.desk_poison_queue))

    def ensure_storage(self) -> StorageReport:
        """Create the bridge's two tables and four queues where missing (once per runtime; StorageError
        names what could not be made, ConfigurationError a missing storage setting)."""
        with self._lock:
            if self._storage_ready is None:
                created = [table.name for table in (self.ledger, self.deliveries) if table.ensure()]
                for queue in (self.retry_queue, self.desk_queue):
                    created += queue.ensure()
                s = self.settings
                self._storage_ready = StorageReport(
                    (s.ledger_table, s.deliveries_table),
                    (s.retry_queue, s.retry_poison_queue, s.desk_queue, s.desk_poison_queue),
                    tuple(created),
                )
            return self._storage_ready

    # -- desks --------------------------------------------------------------
    @lazy
    def jira(self) -> JiraClient | None:
        """JiraClient, or None when Jira credentials are not configured."""
        from deskbridge.desks.jira_client import JiraClient

        s = self.settings
        if not s.jira_configured:
            return None
        token = self.secrets.value(s.require("JIRA_API_TOKEN_SECRET_NAME"))
        return JiraClient(s.jira_url, s.require("JIRA_EMAIL"), token, projects=s.jira_project_keys)

    @lazy
    def servicenow(self) -> ServiceNowClient | None:
        """ServiceNowClient, or None when ServiceNow write-back is not configured."""
        from deskbridge.desks.servicenow_client import ServiceNowClient

        s = self.settings
        if not s.servicenow_configured:
            return None
        token_name = s.raw("SERVICENOW_TOKEN_SECRET_NAME")
        if token_name:
            return ServiceNowClient(s.servicenow_url, token=self.secrets.value(token_name))
        password = self.secrets.value(s.require("SERVICENOW_PASSWORD_SECRET_NAME"))
        return ServiceNowClient(
            s.servicenow_url, username=s.require("SERVICENOW_USERNAME"), password=password
        )

    @lazy
    def callbacks(self) -> CallbackClient:
        """Where /api/provision callers hear the outcome (their ticket.callbackUrl): public hosts only, resolved
        once and connected to as checked (BRIDGE_CALLBACK_HOSTS, BRIDGE_CALLBACK_ALLOW_LOOPBACK)."""
        from deskbridge.desks.callback import CallbackClient

        return CallbackClient(self.settings.callback_policy)


_current: Runtime | None = None
_current_lock = threading.Lock()


def current() -> Runtime:
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                _current = Runtime()
    return _current


def reset(
    environ: Mapping[str, str] | None = None, clock: Clock = SYSTEM, sdk_options: Mapping[str, Any] | None = None
) -> Runtime:
    """A fresh runtime (tests, the demo): new settings, no clients built yet."""
    global _current
    with _current_lock:
        _current = Runtime(Settings(environ), clock, sdk_options)
    return _current
