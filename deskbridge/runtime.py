"""The one place where long-lived clients are built: lazily, once per process.

Every client (Key Vault, Syskit Point, tables, queues, desk APIs) is made on
first use from the settings, so importing the function app never touches
the network or fails on a setting. Tests build a fresh :class:`Runtime`
from their own environment with :func:`reset`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from deskbridge.causes import is_loopback
from deskbridge.clock import SYSTEM, Clock
from deskbridge.settings import STORAGE_NOT_SET, ConfigurationError, Settings

T = TypeVar("T")


class lazy(Generic[T]):
    """Like ``cached_property``, but two threads never build the same client twice."""

    def __init__(self, build: Callable[[Any], T]) -> None:
        self._build = build
        self._name = build.__name__
        self.__doc__ = build.__doc__

    def __get__(self, owner: Any, cls: type | None = None) -> T:
        if owner is None:
            return self  # type: ignore[return-value]
        built = owner.__dict__.get(self._name)
        if built is not None:
            return built
        with owner._lock:
            built = owner.__dict__.get(self._name)
            if built is None:
                built = self._build(owner)
                owner.__dict__[self._name] = built
        return built


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


def _transport_options() -> dict[str, Any]:
    """What ``requests`` would read from the environment on every call, read once.

    With ``trust_env`` it scans every environment variable for proxies and
    looks for a .netrc on each request: about 0.25 ms a call, more with the
    hundred-odd variables of a Functions worker. Without proxy variables all
    it finds is a CA bundle, handed over here instead. With a proxy (or
    NO_PROXY) set, requests keeps its per-call logic.
    """
    from urllib.request import getproxies

    if getproxies():
        return {}
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return {"use_env_settings": False} | ({"connection_verify": bundle} if bundle else {})


def _quiet_sdk_request_logs() -> None:
    """azure-core logs every storage request and answer at INFO, which the worker ships to
    Application Insights: four lines an approval, ~0.2 ms each. Keep its warnings; a level set
    explicitly elsewhere wins."""
    sdk = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    if sdk.level == logging.NOTSET:
        sdk.setLevel(logging.WARNING)


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
        _quiet_sdk_request_logs()

    # -- Azure identity and Key Vault ---------------------------------------
    @lazy
    def azure_credential(self) -> Any:
        """DefaultAzureCredential: managed identity in Azure, AZURE_* variables elsewhere."""
        from azure.identity import DefaultAzureCredential

        # Instance discovery is skipped: the authority is whatever AZURE_AUTHORITY_HOST says.
        return DefaultAzureCredential(
            exclude_interactive_browser_credential=True,
            disable_instance_discovery=True,
            **_fail_fast(os.environ.get("AZURE_AUTHORITY_HOST", "")),
        )

    @lazy
    def secrets(self) -> Any:
        from azure.keyvault.secrets import SecretClient

        from deskbridge.expiry import ExpiryWatch
        from deskbridge.secrets import SecretCache

        s = self.settings
        vault = s.key_vault_url
        connect, read = s.point_timeouts
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
        watch = ExpiryWatch.from_settings(s)
        watch.now = self.clock.now
        return SecretCache(
            client, s.secret_ttl, clock=self.clock.monotonic, on_read=watch, stale_seconds=s.secret_stale
        )

    # -- Syskit Point --------------------------------------------------------
    @lazy
    def point(self) -> Any:
        from deskbridge.point import PointClient, client_secret_tokens, federated_tokens

        s = self.settings
        options = {"timeouts": s.point_timeouts, "clock": self.clock}
        if s.point_auth_mode == "federated":
            tokens = federated_tokens(
                s.point_tenant_id, s.point_client_id, s.point_scope, s.environ("AZURE_CLIENT_ID"), **options
            )
        else:
            tokens = client_secret_tokens(
                s.point_tenant_id, s.point_client_id, s.point_scope, self.secrets, s.point_client_secret_name,
                **options,
            )
        client = PointClient(
            s.point_url,
            tokens,
            timeouts=s.point_timeouts,
            budget_seconds=s.point_retry_budget,
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
        )
        options = _transport_options()
        if options:  # the environment's CA bundle, read once (see _transport_options)
            client.session.trust_env = False
            client.session.verify = options.get("connection_verify", True)
        return client

    # -- storage ------------------------------------------------------------
    def _table(self, name: str) -> Any:
        from azure.data.tables import TableClient

        from deskbridge.ledger import ensure_table

        connection = self.settings.storage_connection_string
        endpoint = connection or self.settings.storage_service_uri("table")
        options = _transport_options() | _fail_fast(endpoint) | self.sdk_options
        if connection:
            client = TableClient.from_connection_string(connection, table_name=name, **options)
        else:
            if not endpoint:
                raise ConfigurationError("AzureWebJobsStorage", STORAGE_NOT_SET)
            client = TableClient(endpoint=endpoint, table_name=name, credential=self.storage_credential, **options)
        return ensure_table(client)

    def _queue(self, name: str) -> Any:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        from deskbridge.retries import ensure_queue

        # The Functions queue trigger expects base64 (host.json messageEncoding).
        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        connection = self.settings.storage_connection_string
        endpoint = connection or self.settings.storage_service_uri("queue")
        options = _transport_options() | _fail_fast(endpoint) | self.sdk_options
        if connection:
            client = QueueClient.from_connection_string(connection, name, **policies, **options)
        else:
            if not endpoint:
                raise ConfigurationError("AzureWebJobsStorage", STORAGE_NOT_SET)
            client = QueueClient(endpoint, name, credential=self.storage_credential, **policies, **options)
        return ensure_queue(client)

    @lazy
    def storage_credential(self) -> Any:
        """The identity named by AzureWebJobsStorage__clientId, as the Functions host uses it."""
        client_id = self.settings.environ("AzureWebJobsStorage__clientId")
        if client_id:
            from azure.identity import ManagedIdentityCredential

            return ManagedIdentityCredential(client_id=client_id)
        return self.azure_credential

    @lazy
    def ledger(self) -> Any:
        from deskbridge.ledger import Ledger

        return Ledger(self._table(self.settings.ledger_table), self.clock)

    @lazy
    def deliveries(self) -> Any:
        from deskbridge.ledger import Deliveries

        return Deliveries(self._table(self.settings.deliveries_table), self.clock)

    @lazy
    def retry_queue(self) -> Any:
        from deskbridge.retries import WorkQueue

        s = self.settings
        return WorkQueue(self._queue(s.retry_queue), self._queue(s.retry_poison_queue))

    @lazy
    def desk_queue(self) -> Any:
        from deskbridge.retries import WorkQueue

        s = self.settings
        return WorkQueue(self._queue(s.desk_queue), self._queue(s.desk_poison_queue))

    # -- desks --------------------------------------------------------------
    @lazy
    def jira(self) -> Any:
        """JiraClient, or False when Jira credentials are not configured."""
        from deskbridge.desks.jira import JiraClient

        s = self.settings
        if not s.jira_configured:
            return False
        token = self.secrets.value(s.require("JIRA_API_TOKEN_SECRET_NAME"))
        return JiraClient(s.require("JIRA_URL"), s.require("JIRA_EMAIL"), token)

    @lazy
    def servicenow(self) -> Any:
        """ServiceNowClient, or False when ServiceNow write-back is not configured."""
        from deskbridge.desks.servicenow import ServiceNowClient

        s = self.settings
        if not s.servicenow_configured:
            return False
        if s.raw("SERVICENOW_TOKEN_SECRET_NAME"):
            return ServiceNowClient(
                s.require("SERVICENOW_URL"), token=self.secrets.value(s.raw("SERVICENOW_TOKEN_SECRET_NAME"))
            )
        password = self.secrets.value(s.require("SERVICENOW_PASSWORD_SECRET_NAME"))
        return ServiceNowClient(
            s.require("SERVICENOW_URL"), username=s.require("SERVICENOW_USERNAME"), password=password
        )

    @lazy
    def callbacks(self) -> Any:
        """Where /api/provision callers hear the outcome (their ticket.callbackUrl)."""
        from deskbridge.desks.callback import CallbackClient

        return CallbackClient()

    def forget(self, name: str) -> None:
        """Drop a built client (after its secret was rotated)."""
        with self._lock:
            self.__dict__.pop(name, None)


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
