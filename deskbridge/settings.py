"""Every app setting the bridge reads, declared once.

Settings are read from the environment (app settings in Azure,
``local.settings.json`` under ``func start``) on first use, never at import
time: an exception while ``function_app`` imports would hide every function.
A setting that is missing or malformed raises :class:`ConfigurationError`
naming the setting (never its value); handlers turn that into a 503.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from deskbridge.callback_url import CallbackPolicy, valid_host_pattern


class ConfigurationError(Exception):
    """A setting the current operation needs is missing or malformed."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"setting {setting}: {problem}")
        self.setting = setting
        self.problem = problem


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    doc: str
    required: bool = False


def _spec(name: str, default: str | None, doc: str, required: bool = False) -> SettingSpec:
    return SettingSpec(name, default, doc, required)


# The one list of settings: the README, local.settings.example.json and the
# Bicep app settings are checked against it by tests/test_settings_docs.py.
SETTINGS: tuple[SettingSpec, ...] = (
    # Syskit Point and its Entra ID app
    _spec("POINT_URL", None, "Syskit Point base URL, e.g. https://contoso.point.syskit.com (https; http:// only to loopback, local runs)", True),
    _spec("POINT_TENANT_ID", None, "Directory (tenant) ID of the integration app", True),
    _spec(
        "POINT_API_APP_ID",
        None,
        "Application (client) ID of the Syskit Point API app; the scope is {id}/.default",
        True,
    ),
    _spec("POINT_CLIENT_ID", None, "Application (client) ID of the integration app", True),
    _spec(
        "POINT_AUTH_MODE",
        "secret",
        "secret (client secret from Key Vault) or federated (managed identity as a federated credential)",
    ),
    _spec(
        "POINT_CLIENT_SECRET_NAME",
        "point-client-secret",
        "Key Vault secret holding the integration app's client secret",
    ),
    _spec("POINT_TEMPLATE_IDS", "", "allowed template ids, comma-separated; empty allows any"),
    _spec("POINT_DEFAULT_TEMPLATE_ID", "", "template used when a desk payload names none: an id, or one per type (teams=7,sites=8,groups=9,yammer=10)"),
    _spec("POINT_DEFAULT_WORKSPACE_TYPE", "teams", "teams, groups, sites or yammer, when a payload names none"),
    _spec("POINT_CONNECT_TIMEOUT_SECONDS", "3.05", "connect timeout of each Syskit Point call"),
    _spec(
        "POINT_READ_TIMEOUT_SECONDS",
        "6",
        "read timeout of each Syskit Point call; a POST that times out is recorded as uncertain",
    ),
    _spec(
        "POINT_RETRY_BUDGET_SECONDS", "7", "total time an approval may spend retrying Syskit Point before it is queued"
    ),
    _spec(
        "POINT_WEBHOOK_KEY_SECRET_NAME",
        "",
        "Key Vault secret(s) holding the Syskit Point webhook signature key; two comma-separated names during rotation",
    ),
    # Key Vault
    _spec("KEY_VAULT_URL", None, "URL of the Key Vault holding every secret", True),
    _spec("BRIDGE_SECRET_TTL_SECONDS", "3600", "how long a secret read from Key Vault is cached in process"),
    _spec("BRIDGE_SECRET_EXPIRY_WARNING_DAYS", "30", "warn when a secret expires within this many days"),
    _spec(
        "BRIDGE_SECRET_STALE_SECONDS",
        "86400",
        "while Key Vault is unreachable, keep using a secret read this long ago at most (a warning each time)",
    ),
    # Storage
    _spec("AzureWebJobsStorage", "", "storage account of the ledger and queues (and the Functions host), as a connection string; UseDevelopmentStorage=true is Azurite on its default ports. In Azure, instead, the identity-based AzureWebJobsStorage__* settings (infra sets them)"),
    _spec("BRIDGE_LEDGER_TABLE", "provisioningrequests", "Azure Table holding one record per ticket"),
    _spec("BRIDGE_DELIVERIES_TABLE", "deliveries", "Azure Table remembering webhook delivery ids, to drop replays"),
    _spec("BRIDGE_RETRY_QUEUE", "provisioning-retries", "queue of approvals waiting for another attempt"),
    _spec(
        "BRIDGE_RETRY_POISON_QUEUE",
        "provisioning-retries-poison",
        "where approvals go after the last attempt; keep it {retry queue}-poison",
    ),
    _spec("BRIDGE_DESK_QUEUE", "desk-updates", "queue of outcomes to write back to the desks"),
    _spec(
        "BRIDGE_DESK_POISON_QUEUE",
        "desk-updates-poison",
        "where desk updates go after the last attempt; keep it {desk queue}-poison",
    ),
    _spec("BRIDGE_RETRY_SCHEDULE", "60,300,1800,7200,21600", "seconds between attempts; the last one repeats"),
    _spec("BRIDGE_RETRY_MAX_AGE_SECONDS", "86400", "keep retrying until a request is at least this old"),
    # The reconciler
    _spec(
        "BRIDGE_RECONCILE_SCHEDULE",
        "0 */5 * * * *",
        "NCRONTAB schedule of the reconciler, which moves stranded requests and desk updates forward",
    ),
    _spec(
        "BRIDGE_QUEUE_GRACE_SECONDS",
        "600",
        "a retry or desk update this long overdue is taken as lost: the reconciler queues it again",
    ),
    _spec(
        "BRIDGE_DELIVERY_RETENTION_SECONDS",
        "604800",
        "how long delivery ids (the signed approval routes' webhook-id) are kept to drop replays",
    ),
    _spec(
        "BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS",
        "",
        "off when empty; else re-send an uncertain request when no Syskit Point event for its workspace came "
        "within this many seconds (needs POINT_WEBHOOK_KEY_SECRET_NAME; may provision twice)",
    ),
    # Retention of personal data; outcomes asked for by request id, and requests overdue
    _spec("BRIDGE_RECORD_RETENTION_DAYS", "90", "days a settled request keeps the people in its body (owners, members, reporter); then the reconciler removes them and keeps the audit fields"),
    _spec(
        "BRIDGE_OUTCOME_POLL_AFTER_SECONDS",
        "900",
        "ask Syskit Point for the status of a submitted or provisioning request (by its request id) when no event "
        "came for this many seconds, then at a growing interval",
    ),
    _spec(
        "BRIDGE_OUTCOME_OVERDUE_SECONDS",
        "86400",
        "a request with no outcome this long after it was sent is logged as overdue once (and noted on its ticket)",
    ),
    # Limits
    _spec("BRIDGE_MAX_BODY_BYTES", "262144", "largest request body accepted"),
    _spec("BRIDGE_MAX_OWNERS", "100", "most owners one request may name"),
    _spec("BRIDGE_MAX_MEMBERS", "1000", "most members one request may name"),
    # /api/provision callers
    _spec(
        "PROVISION_SIGNING_SECRET_NAME",
        "",
        "Key Vault secret(s) (whsec_...) for Standard Webhooks signatures on /api/provision",
    ),
    _spec("PROVISION_REQUIRE_SIGNATURE", "", "true or false; default: true when a signing secret is configured"),
    # Outcome callbacks (ticket.callbackUrl of /api/provision callers)
    _spec(
        "BRIDGE_CALLBACK_SIGNING_SECRET_NAME",
        "",
        "Key Vault secret(s) (whsec_...) signing outcome callbacks (Standard Webhooks), never an inbound secret; "
        "two comma-separated names during rotation; empty: callbacks are sent unsigned",
    ),
    _spec(
        "BRIDGE_CALLBACK_HOSTS",
        "",
        "callback hosts allowed, comma-separated: exact names and *.suffix; empty: any public host",
    ),
    _spec(
        "BRIDGE_CALLBACK_ALLOW_LOOPBACK",
        "false",
        "true lets callbacks go to loopback (127.0.0.0/8, ::1, localhost): local runs only, never in Azure",
    ),
    _spec(
        "PROVISION_DESK_WRITEBACK",
        "",
        "desks a /api/provision record naming a desk ticket may write its outcome to: jira, servicenow or both "
        "(comma-separated); empty: none (docs/security.md says what each lets a provision key holder do)",
    ),
    # Jira
    _spec("JIRA_APPROVED_STATUS", "Approved", "status name that means approved"),
    _spec(
        "JIRA_POST_FUNCTION_MATCH",
        "to_status",
        "what a workflow post function's transition must name to approve: to_status (JIRA_APPROVED_STATUS) or "
        "transition_name (the transition, named in JIRA_APPROVED_STATUS)",
    ),
    _spec("JIRA_FIELD_DISPLAY_NAME", "summary", "field holding the workspace name"),
    _spec("JIRA_FIELD_DESCRIPTION", "summary", "field holding the workspace description"),
    _spec("JIRA_FIELD_OWNERS", "", "user-picker field of owners; empty: the reporter"),
    _spec("JIRA_FIELD_MEMBERS", "", "user-picker field of members; empty: none"),
    _spec("JIRA_FIELD_WORKSPACE_TYPE", "", "select or text field naming the workspace type"),
    _spec("JIRA_FIELD_PRIVACY", "", "select, checkbox or text field: private or public"),
    _spec("JIRA_FIELD_TEMPLATE", "", "select, number or text field holding the template id"),
    _spec("JIRA_URL", "", "Jira site, e.g. https://contoso.atlassian.net (https; http:// only to loopback); enables e-mail lookup and write-back"),
    _spec("JIRA_EMAIL", "", "account whose API token the bridge uses"),
    _spec("JIRA_API_TOKEN_SECRET_NAME", "", "Key Vault secret holding that account's API token"),
    _spec(
        "JIRA_WEBHOOK_SECRET_NAME",
        "",
        "Key Vault secret(s) of the Jira admin webhook; two comma-separated names during rotation",
    ),
    _spec("JIRA_REQUIRE_SIGNATURE", "", "true or false; default: true when a webhook secret is configured"),
    _spec(
        "JIRA_INTERNAL_NOTE", "true", "write outcomes as Jira Service Management internal notes (false: plain comments)"
    ),
    _spec("JIRA_TRANSITION_COMPLETED", "", "transition to apply when provisioning completes (by name)"),
    _spec("JIRA_TRANSITION_FAILED", "", "transition to apply when provisioning fails (by name)"),
    _spec(
        "JIRA_PROJECT_KEY",
        "",
        "project key doctor checks the bridge account's permissions and workflow transitions in, e.g. HR; empty: "
        "doctor checks only the token",
    ),
    _spec(
        "JIRA_PROJECT_KEYS",
        "",
        "Jira projects the bridge may write to (comments, transitions), comma-separated, e.g. HR,IT; empty: any "
        "project the bridge account can reach",
    ),
    # ServiceNow
    _spec("SERVICENOW_URL", "", "instance, e.g. https://contoso.service-now.com (https; http:// only to loopback); enables write-back"),
    _spec("SERVICENOW_USERNAME", "", "integration user for write-back (basic auth)"),
    _spec("SERVICENOW_PASSWORD_SECRET_NAME", "", "Key Vault secret holding that user's password"),
    _spec("SERVICENOW_TOKEN_SECRET_NAME", "", "Key Vault secret holding an OAuth bearer token (instead of basic auth)"),
    _spec(
        "SERVICENOW_SIGNING_SECRET_NAME",
        "",
        "Key Vault secret(s) (whsec_...) for Standard Webhooks signatures on /api/servicenow",
    ),
    _spec("SERVICENOW_REQUIRE_SIGNATURE", "", "true or false; default: true when a signing secret is configured"),
    _spec("SERVICENOW_VARIABLE_DISPLAY_NAME", "site_name", "catalog variable holding the workspace name"),
    _spec("SERVICENOW_VARIABLE_DESCRIPTION", "site_description", "catalog variable holding the description"),
    _spec("SERVICENOW_VARIABLE_WORKSPACE_TYPE", "workspace_type", "catalog variable holding the workspace type"),
    _spec("SERVICENOW_VARIABLE_PRIVACY", "is_private", "catalog variable holding privacy (true/false)"),
    _spec("SERVICENOW_VARIABLE_TEMPLATE", "template_id", "catalog variable holding the template id"),
    _spec(
        "SERVICENOW_STATE_COMPLETED",
        "",
        "sc_req_item state to set when provisioning completes (e.g. 3); empty: leave it",
    ),
    _spec("SERVICENOW_STATE_FAILED", "", "sc_req_item state to set when provisioning fails (e.g. 4); empty: leave it"),
)

SETTING_NAMES = frozenset(spec.name for spec in SETTINGS)

# What to do about a missing or malformed setting, said the same way by every command and doctor.
SETTINGS_HINT = (
    "set what is named above in the app settings (local.settings.json when running locally); the README's "
    "settings table says what each setting holds"
)
# The one description of a missing storage connection. An identity-based connection, as the
# Functions host reads one, is AzureWebJobsStorage__accountName, or a service URI per service;
# the bridge uses queues and tables.
STORAGE_NOT_SET = (
    "is not set, nor its identity-based form (AzureWebJobsStorage__accountName, or AzureWebJobsStorage__queueServiceUri "
    "and AzureWebJobsStorage__tableServiceUri)"
)
_DEFAULTS = {spec.name: spec.default for spec in SETTINGS}

WORKSPACE_TYPES = ("teams", "groups", "sites", "yammer")

# Per calling route: (secret-name setting, signature-required setting).
_SIGNATURE_SETTINGS = {
    "jira": ("JIRA_WEBHOOK_SECRET_NAME", "JIRA_REQUIRE_SIGNATURE"),
    "servicenow": ("SERVICENOW_SIGNING_SECRET_NAME", "SERVICENOW_REQUIRE_SIGNATURE"),
    "provision": ("PROVISION_SIGNING_SECRET_NAME", "PROVISION_REQUIRE_SIGNATURE"),
}


# The desks a /api/provision record may write to when PROVISION_DESK_WRITEBACK names them.
WRITEBACK_DESKS = ("jira", "servicenow")


def _service_url(setting: str, value: str) -> str:
    """A remote service's base URL: https://, or http:// to a loopback host (local runs against stand-ins)."""
    url = value.rstrip("/")
    lowered = url.lower()
    if lowered.startswith("https://") and len(url) > len("https://"):
        return url
    if lowered.startswith("http://") and _loopback_host(url[len("http://"):]):
        return url
    raise ConfigurationError(setting, "must be an https:// URL")  # http:// to loopback is for local runs only


def _loopback_host(rest: str) -> bool:
    import ipaddress

    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return False
    host = authority[1:].partition("]")[0] if authority.startswith("[") else authority.rpartition(":")[0] or authority
    host = host.lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings:
    """Typed, validated view of the app settings.

    Each property parses its setting when first read and raises
    :class:`ConfigurationError` if it is missing or malformed, so a problem
    with a setting only affects the operations that need it.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)

    # -- raw access ---------------------------------------------------------
    def raw(self, name: str) -> str:
        value = self._env.get(name, "").strip()
        if value:
            return value
        default = _DEFAULTS.get(name)
        return default or ""

    def require(self, name: str) -> str:
        value = self.raw(name)
        if not value:
            raise ConfigurationError(name, "is not set")
        return value

    def _list(self, name: str) -> tuple[str, ...]:
        """A comma-separated setting: its names, trimmed. Set but naming nothing (``","``, ``" , "``) is a
        ConfigurationError: a list that is set is meant to say something, and reading it as empty would quietly
        switch off what it controls (a signature check, a limit). Every list-valued setting is read here."""
        value = self.raw(name)
        parts = tuple(part.strip() for part in value.split(","))
        names = tuple(part for part in parts if part)
        if value and not names:
            raise ConfigurationError(name, "is set but names nothing (only commas or spaces)")
        return names

    def _int(self, name: str, minimum: int = 0) -> int:
        value = self.raw(name)
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(name, "must be a whole number") from None
        if number < minimum:
            raise ConfigurationError(name, f"must be at least {minimum}")
        return number

    def _float(self, name: str) -> float:
        try:
            number = float(self.raw(name))
        except ValueError:
            raise ConfigurationError(name, "must be a number of seconds") from None
        if number <= 0:
            raise ConfigurationError(name, "must be greater than 0")
        return number

    def _flag(self, name: str, default: bool) -> bool:
        value = self.raw(name).lower()
        if not value:
            return default
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise ConfigurationError(name, "must be true or false")

    def environ(self, name: str) -> str:
        """A variable outside the bridge's own list (Azure's own settings)."""
        return self._env.get(name, "")

    # -- Syskit Point -------------------------------------------------------
    @cached_property
    def point_url(self) -> str:
        return _service_url("POINT_URL", self.require("POINT_URL"))

    @property
    def point_tenant_id(self) -> str:
        return self.require("POINT_TENANT_ID")

    @property
    def point_client_id(self) -> str:
        return self.require("POINT_CLIENT_ID")

    @cached_property
    def point_scope(self) -> str:
        app_id = self.require("POINT_API_APP_ID")
        if app_id.endswith("/.default"):
            return app_id
        return f"{app_id.rstrip('/')}/.default"

    @cached_property
    def point_auth_mode(self) -> str:
        mode = self.raw("POINT_AUTH_MODE").lower()
        if mode not in ("secret", "federated"):
            raise ConfigurationError("POINT_AUTH_MODE", "must be secret or federated")
        return mode

    @property
    def point_client_secret_name(self) -> str:
        return self.require("POINT_CLIENT_SECRET_NAME")

    @cached_property
    def template_ids(self) -> frozenset[int]:
        try:
            return frozenset(int(part) for part in self._list("POINT_TEMPLATE_IDS"))
        except ValueError:
            raise ConfigurationError("POINT_TEMPLATE_IDS", "must be whole numbers separated by commas") from None

    @cached_property
    def default_template_ids(self) -> dict[str, int]:
        """Default template per workspace type; the key "" applies to every type."""
        defaults: dict[str, int] = {}
        for part in self._list("POINT_DEFAULT_TEMPLATE_ID"):
            kind, _, number = part.rpartition("=")
            kind = kind.strip().lower()
            if kind and kind not in WORKSPACE_TYPES or not number.strip().isdigit():
                raise ConfigurationError(
                    "POINT_DEFAULT_TEMPLATE_ID", "must be a template id, or type=id pairs such as teams=7,sites=8"
                )
            defaults[kind] = int(number)
        return defaults

    @cached_property
    def default_workspace_type(self) -> str:
        value = self.raw("POINT_DEFAULT_WORKSPACE_TYPE").lower()
        if value not in WORKSPACE_TYPES:
            raise ConfigurationError("POINT_DEFAULT_WORKSPACE_TYPE", "must be one of " + ", ".join(WORKSPACE_TYPES))
        return value

    @cached_property
    def point_timeouts(self) -> tuple[float, float]:
        return (self._float("POINT_CONNECT_TIMEOUT_SECONDS"), self._float("POINT_READ_TIMEOUT_SECONDS"))

    @cached_property
    def point_retry_budget(self) -> float:
        return self._float("POINT_RETRY_BUDGET_SECONDS")

    @cached_property
    def point_webhook_key_secret_names(self) -> tuple[str, ...]:
        return self._list("POINT_WEBHOOK_KEY_SECRET_NAME")

    # -- Key Vault ----------------------------------------------------------
    @cached_property
    def key_vault_url(self) -> str:
        url = self.require("KEY_VAULT_URL").rstrip("/")
        if not url.startswith("https://"):
            raise ConfigurationError("KEY_VAULT_URL", "must be an https:// URL")
        return url

    @cached_property
    def secret_ttl(self) -> int:
        return self._int("BRIDGE_SECRET_TTL_SECONDS")

    @cached_property
    def secret_expiry_warning_days(self) -> int:
        return self._int("BRIDGE_SECRET_EXPIRY_WARNING_DAYS")

    @cached_property
    def secret_stale(self) -> int:
        return self._int("BRIDGE_SECRET_STALE_SECONDS")

    # -- storage ------------------------------------------------------------
    def _storage_name(self, name: str, pattern: str) -> str:
        import re

        value = self.require(name)
        if not re.fullmatch(pattern, value):
            raise ConfigurationError(name, "is not a valid Azure Storage name")
        return value

    @cached_property
    def ledger_table(self) -> str:
        return self._storage_name("BRIDGE_LEDGER_TABLE", r"[A-Za-z][A-Za-z0-9]{2,62}")

    @cached_property
    def deliveries_table(self) -> str:
        return self._storage_name("BRIDGE_DELIVERIES_TABLE", r"[A-Za-z][A-Za-z0-9]{2,62}")

    def _queue(self, name: str) -> str:
        return self._storage_name(name, r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")

    @cached_property
    def retry_queue(self) -> str:
        return self._queue("BRIDGE_RETRY_QUEUE")

    @cached_property
    def retry_poison_queue(self) -> str:
        return self._queue("BRIDGE_RETRY_POISON_QUEUE")

    @cached_property
    def desk_queue(self) -> str:
        return self._queue("BRIDGE_DESK_QUEUE")

    @cached_property
    def desk_poison_queue(self) -> str:
        return self._queue("BRIDGE_DESK_POISON_QUEUE")

    @cached_property
    def retry_schedule(self) -> tuple[int, ...]:
        try:
            delays = tuple(int(part) for part in self._list("BRIDGE_RETRY_SCHEDULE"))
        except ValueError:
            delays = ()
        if not delays or min(delays) < 1 or max(delays) > 7 * 24 * 3600 - 1:
            raise ConfigurationError(
                "BRIDGE_RETRY_SCHEDULE", "must be comma-separated whole seconds, each between 1 and 604799"
            )
        return delays

    @cached_property
    def retry_max_age(self) -> int:
        return self._int("BRIDGE_RETRY_MAX_AGE_SECONDS")

    @cached_property
    def pending_stale(self) -> float:
        """Seconds after which a pending record's worker is surely gone: longer than any attempt can take."""
        connect, read = self.point_timeouts
        return self.point_retry_budget + connect + read + 60

    # -- the reconciler -----------------------------------------------------
    @property
    def reconcile_schedule(self) -> str:
        return self.require("BRIDGE_RECONCILE_SCHEDULE")

    @cached_property
    def queue_grace(self) -> int:
        return self._int("BRIDGE_QUEUE_GRACE_SECONDS", minimum=1)

    @cached_property
    def delivery_retention(self) -> int:
        return self._int("BRIDGE_DELIVERY_RETENTION_SECONDS", minimum=600)

    @cached_property
    def uncertain_resend_after(self) -> int | None:
        """None when the optional re-send of uncertain requests is off (the default)."""
        if not self.raw("BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS"):
            return None
        return self._int("BRIDGE_UNCERTAIN_RESEND_AFTER_SECONDS", minimum=60)

    @cached_property
    def record_retention_days(self) -> int:
        return self._int("BRIDGE_RECORD_RETENTION_DAYS", minimum=1)

    @cached_property
    def outcome_poll_after(self) -> int:
        return self._int("BRIDGE_OUTCOME_POLL_AFTER_SECONDS", minimum=60)

    @cached_property
    def outcome_overdue(self) -> int:
        return self._int("BRIDGE_OUTCOME_OVERDUE_SECONDS", minimum=60)

    # -- limits -------------------------------------------------------------
    @cached_property
    def max_body_bytes(self) -> int:
        return self._int("BRIDGE_MAX_BODY_BYTES", minimum=1024)

    @cached_property
    def max_owners(self) -> int:
        return self._int("BRIDGE_MAX_OWNERS", minimum=1)

    @cached_property
    def max_members(self) -> int:
        return self._int("BRIDGE_MAX_MEMBERS")

    # -- caller signatures --------------------------------------------------
    def signing_secret_names(self, route: str) -> tuple[str, ...]:
        """Secret names for a route's caller signature (jira, servicenow, provision)."""
        return self._list(_SIGNATURE_SETTINGS[route][0])

    def signature_required(self, route: str) -> bool:
        secret_setting, required_setting = _SIGNATURE_SETTINGS[route]
        configured = bool(self.signing_secret_names(route))
        required = self._flag(required_setting, default=configured)
        if required and not configured:
            raise ConfigurationError(secret_setting, f"is not set, but {required_setting} is true")
        return required

    # -- outcome callbacks ----------------------------------------------------
    @cached_property
    def callback_signing_secret_names(self) -> tuple[str, ...]:
        """The secrets that sign outcome callbacks; empty: callbacks go unsigned (never an inbound secret)."""
        return self._list("BRIDGE_CALLBACK_SIGNING_SECRET_NAME")

    @cached_property
    def callback_policy(self) -> CallbackPolicy:
        hosts = tuple(entry.lower().removesuffix(".") for entry in self._list("BRIDGE_CALLBACK_HOSTS"))
        if not all(valid_host_pattern(entry) for entry in hosts):
            raise ConfigurationError(
                "BRIDGE_CALLBACK_HOSTS", "must be host names or *.suffix entries (e.g. hooks.contoso.com,*.contoso.com)"
            )
        return CallbackPolicy(hosts=hosts, allow_loopback=self._flag("BRIDGE_CALLBACK_ALLOW_LOOPBACK", default=False))

    # -- Jira ---------------------------------------------------------------
    @property
    def jira_approved_status(self) -> str:
        return self.raw("JIRA_APPROVED_STATUS")

    @cached_property
    def jira_post_function_match(self) -> str:
        value = self.raw("JIRA_POST_FUNCTION_MATCH").lower()
        if value not in ("to_status", "transition_name"):
            raise ConfigurationError("JIRA_POST_FUNCTION_MATCH", "must be to_status or transition_name")
        return value

    @cached_property
    def jira_project_key(self) -> str:
        import re

        value = self.raw("JIRA_PROJECT_KEY").upper()
        if value and not re.fullmatch(r"[A-Z][A-Z0-9_]{0,254}", value):
            raise ConfigurationError("JIRA_PROJECT_KEY", "must be a Jira project key such as HR")
        return value

    @cached_property
    def jira_url(self) -> str:
        return _service_url("JIRA_URL", self.require("JIRA_URL"))

    @cached_property
    def jira_project_keys(self) -> frozenset[str]:
        """The projects every Jira write is limited to; empty: no limit (the account's own permissions)."""
        import re

        keys = frozenset(key.upper() for key in self._list("JIRA_PROJECT_KEYS"))
        if any(not re.fullmatch(r"[A-Z][A-Z0-9_]{0,254}", key) for key in keys):
            raise ConfigurationError("JIRA_PROJECT_KEYS", "must be Jira project keys separated by commas, such as HR,IT")
        return keys

    def jira_project_allowed(self, issue_key: str) -> bool:
        """Whether the bridge may write to this issue: its project is listed in JIRA_PROJECT_KEYS, or none is."""
        allowed = self.jira_project_keys
        return not allowed or issue_key.rpartition("-")[0].upper() in allowed

    @cached_property
    def provision_desk_writeback(self) -> frozenset[str]:
        """The desks a /api/provision record may write to (PROVISION_DESK_WRITEBACK); empty: none."""
        desks = frozenset(desk.lower() for desk in self._list("PROVISION_DESK_WRITEBACK"))
        if not desks <= set(WRITEBACK_DESKS):
            raise ConfigurationError("PROVISION_DESK_WRITEBACK", "must be jira, servicenow or both, comma-separated")
        return desks

    @property
    def jira_configured(self) -> bool:
        return bool(self.raw("JIRA_URL") and self.raw("JIRA_EMAIL") and self.raw("JIRA_API_TOKEN_SECRET_NAME"))

    @property
    def jira_internal_note(self) -> bool:
        return self._flag("JIRA_INTERNAL_NOTE", default=True)

    # -- ServiceNow ---------------------------------------------------------
    @cached_property
    def servicenow_url(self) -> str:
        return _service_url("SERVICENOW_URL", self.require("SERVICENOW_URL"))

    @property
    def servicenow_configured(self) -> bool:
        has_auth = (self.raw("SERVICENOW_USERNAME") and self.raw("SERVICENOW_PASSWORD_SECRET_NAME")) or self.raw(
            "SERVICENOW_TOKEN_SECRET_NAME"
        )
        return bool(self.raw("SERVICENOW_URL") and has_auth)

    # -- storage connection (Azure's own settings) --------------------------
    @property
    def storage_connection_string(self) -> str:
        return self.raw("AzureWebJobsStorage")

    def storage_service_uri(self, service: str) -> str:
        """Identity-based connection: AzureWebJobsStorage__{service}ServiceUri."""
        uri = self.environ(f"AzureWebJobsStorage__{service}ServiceUri")
        if not uri:
            account = self.environ("AzureWebJobsStorage__accountName")
            if account:
                uri = f"https://{account}.{service}.core.windows.net"
        return uri


def _point_checks(settings: Settings) -> tuple[Callable[[], object], ...]:
    checks: tuple[Callable[[], object], ...] = (
        lambda: settings.point_url,
        lambda: settings.point_tenant_id,
        lambda: settings.point_client_id,
        lambda: settings.point_scope,
        lambda: settings.point_auth_mode,
        lambda: settings.template_ids,
        lambda: settings.default_template_ids,
        lambda: settings.default_workspace_type,
        lambda: settings.point_timeouts,
        lambda: settings.point_retry_budget,
    )
    return checks + ((lambda: settings.key_vault_url,) if uses_client_secret(settings) else ())


def uses_client_secret(settings: Settings) -> bool:
    """Whether the Syskit Point token needs the client secret from Key Vault (secret mode); a malformed mode
    counts as secret mode, so that the Key Vault settings are checked too (the mode itself is named)."""
    try:
        return settings.point_auth_mode == "secret"
    except ConfigurationError:
        return True


def check_storage(settings: Settings) -> None:
    """The ledger and the queues can be reached: a connection string, or the identity-based URIs."""
    if not settings.storage_connection_string and not (
        settings.storage_service_uri("queue") and settings.storage_service_uri("table")
    ):
        raise ConfigurationError("AzureWebJobsStorage", STORAGE_NOT_SET)


# The settings each part of the bridge needs, for doctor (all of them) and the commands (theirs).
SETTING_GROUPS: dict[str, Callable[[Settings], tuple[Callable[[], object], ...]]] = {
    "point": _point_checks,  # Syskit Point and its token (the client secret is in Key Vault in secret mode)
    "key vault": lambda s: (
        lambda: s.key_vault_url,
        lambda: s.secret_ttl,
        lambda: s.secret_expiry_warning_days,
        lambda: s.secret_stale,
    ),
    "storage": lambda s: (
        lambda: check_storage(s),
        lambda: s.ledger_table,
        lambda: s.deliveries_table,
        lambda: s.retry_queue,
        lambda: s.retry_poison_queue,
        lambda: s.desk_queue,
        lambda: s.desk_poison_queue,
        lambda: s.retry_schedule,
        lambda: s.retry_max_age,
        lambda: s.reconcile_schedule,
        lambda: s.queue_grace,
        lambda: s.delivery_retention,
        lambda: s.uncertain_resend_after,
        lambda: s.record_retention_days,
        lambda: s.outcome_poll_after,
        lambda: s.outcome_overdue,
    ),
    "limits": lambda s: (lambda: s.max_body_bytes, lambda: s.max_owners, lambda: s.max_members),
    # What an attempt's outcome needs (the retry schedule, the queues it sends to), read before the record.
    "outcome": lambda s: (
        lambda: s.retry_schedule,
        lambda: s.retry_max_age,
        lambda: s.pending_stale,
        lambda: s.retry_queue,
        lambda: s.retry_poison_queue,
        lambda: s.desk_queue,
        lambda: s.provision_desk_writeback,  # where the outcome may be written (deskbridge.writeback)
        lambda: s.jira_project_keys,
    ),
    "callers": lambda s: (
        lambda: s.signature_required("jira"),
        lambda: s.signature_required("servicenow"),
        lambda: s.signature_required("provision"),
        lambda: s.jira_internal_note,
        lambda: s.jira_post_function_match,
        lambda: s.callback_policy,
        lambda: s.callback_signing_secret_names,
        lambda: s.point_webhook_key_secret_names,
    ),
    "desks": lambda s: (
        lambda: s.jira_project_key,
        lambda: s.jira_project_keys,
        lambda: s.provision_desk_writeback,
        *((lambda: s.jira_url,) if s.raw("JIRA_URL") else ()),
        *((lambda: s.servicenow_url,) if s.raw("SERVICENOW_URL") else ()),
    ),
}


def check_all(
    settings: Settings, groups: Iterable[str] | None = None, also: Iterable[Callable[[], object]] = ()
) -> list[ConfigurationError]:
    """Every problem with the settings (of ``groups`` only, when given, and the reads ``also``), each setting
    named once."""
    problems: dict[str, ConfigurationError] = {}
    checks = [check for group in (SETTING_GROUPS if groups is None else groups) for check in SETTING_GROUPS[group](settings)]
    for check in [*checks, *also]:
        try:
            check()
        except ConfigurationError as problem:
            problems.setdefault(problem.setting, problem)
    return list(problems.values())
