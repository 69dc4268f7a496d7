"""After ``azd provision``: what ``python -m deskbridge setup`` and ``doctor --deployed`` do, step by step.

Every step is safe to run again, and a failure in one leaves the next run to finish it:

1. one named function key per desk route (``deskbridge-<function>``), added through ARM only when the
   function has no key of that name yet; a new key's URL is printed in full that once, an existing one
   with its key hidden;
2. with a Syskit Point admin app for this run only: the bridge's events URL registered with Syskit Point
   (unless it already is), and Syskit Point's webhook signature key (``GET /v1.0/options``) written to the
   bridge's vault under the name POINT_WEBHOOK_KEY_SECRET_NAME gives;
3. the deployed app checked: its settings against the azd environment (names only, never values), and
   its health route;
4. what to do on the desk's side, filled in.

The inputs are the azd environment's values (``azd env get-values``, or the hook's environment), the ARM
client, and the admin's Syskit Point client; nothing here talks to a service but through them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deskbridge.errors import ArmError, PointError
from deskbridge.settings import SETTING_NAMES, SETTINGS, Settings

if TYPE_CHECKING:
    from deskbridge.arm import ArmClient
    from deskbridge.point import PointClient

# The routes a desk calls, by the function that serves each (function_app.py), and the events route.
DESK_FUNCTIONS = ("jira", "servicenow", "provision")
EVENTS_FUNCTION = "point_events"
ROUTES = {"jira": "jira", "servicenow": "servicenow", "provision": "provision", EVENTS_FUNCTION: "point/events"}
KEY_PREFIX = "deskbridge-"  # a key setup adds: deskbridge-jira, deskbridge-point_events, ...
EVENT_TYPES = ("*",)  # every Syskit Point event; the bridge ignores the ones it does not use
# Values the azd environment must hold for setup (the template's outputs; azd sets the subscription).
AZD_OUTPUTS = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "FUNCTION_APP_URL")
# App settings the template derives from other values (not an azd value of the same name), and settings
# of the platform: set on the app but never in the azd environment, so never a difference on their own.
DERIVED_SETTINGS = frozenset({"KEY_VAULT_URL", "AzureWebJobsStorage"})
DEFAULTS = {spec.name: spec.default for spec in SETTINGS}


def parse_dotenv(text: str) -> dict[str, str]:
    """``azd env get-values`` output (and ``.azure/<env>/.env``): NAME="value" lines, Go-quoted values."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[name] = value
    return values


# == 1. function keys ====================================================================


@dataclass(frozen=True)
class FunctionKey:
    function: str
    name: str
    value: str = field(repr=False)  # never printed but on the run that created it
    created: bool

    def url(self, app_url: str, shown: bool | None = None) -> str:
        """The URL a desk pastes; the key hidden unless this run created it (or ``shown`` says otherwise)."""
        show = self.created if shown is None else shown
        return f"{app_url.rstrip('/')}/api/{ROUTES[self.function]}?code={self.value if show else '***'}"


def ensure_key(arm: ArmClient, function: str) -> FunctionKey:
    """The key ``deskbridge-<function>``: read when it exists, else added (once, across any number of runs)."""
    name = KEY_PREFIX + function
    existing = arm.function_keys(function).get(name)
    if existing:
        return FunctionKey(function, name, existing, created=False)
    return FunctionKey(function, name, arm.add_function_key(function, name), created=True)


def desks_of(env: Mapping[str, str], asked: Sequence[str] = ()) -> list[str]:
    """The desk routes to key: those asked for, else the desks the environment configures, else provision."""
    if asked:
        return [d for d in DESK_FUNCTIONS if d in asked]
    found = [d for d, setting in (("jira", "JIRA_URL"), ("servicenow", "SERVICENOW_URL")) if env.get(setting)]
    return found or ["provision"]


# == 2. the Syskit Point webhook =========================================================


def register_webhook(point: PointClient, url: str) -> tuple[bool, int]:
    """Register ``url`` (the events route with its key) with Syskit Point, unless it already is; then remove
    registrations of the same route with another key (a key since replaced: Syskit Point's events to it
    would be refused). Returns (registered now, stale ones removed)."""
    listed = [e.get("endpoint") for e in point.call("GET", "/v1.0/webhooks/endpoints") or [] if isinstance(e, dict)]
    registered = url not in listed
    if registered:
        point.call("POST", "/v1.0/webhooks/endpoints", json={"endpoint": url, "types": list(EVENT_TYPES)})
    route = url.split("?", 1)[0]
    stale = [e for e in listed if isinstance(e, str) and e != url and e.split("?", 1)[0] == route]
    for endpoint in stale:
        point.call("DELETE", "/v1.0/webhooks/endpoints", json={"endpoint": endpoint})
    return registered, len(stale)


def signature_key(point: PointClient) -> str:
    """Syskit Point's webhook signature key (``GET /v1.0/options``; needs Point.Admin)."""
    options = point.call("GET", "/v1.0/options") or {}
    key = options.get("webhooksSignatureAuthenticationKey") if isinstance(options, dict) else None
    if not isinstance(key, str) or not key:
        raise PointError("Syskit Point's options carry no webhooksSignatureAuthenticationKey", transient=False)
    return key


# == 3. the deployed app =================================================================


@dataclass(frozen=True)
class Difference:
    name: str
    kind: str  # "differs", "missing on the app", "only on the app"

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


def settings_differences(app: Mapping[str, str], env: Mapping[str, str]) -> list[Difference]:
    """Every bridge setting whose value on the app is not what the azd environment says (names only).

    ``only on the app``: set on the app by hand, and the next ``azd provision`` removes it (or puts the
    default back). A setting the azd environment leaves empty takes the template's default, the bridge's
    own, so the app may hold that; a setting the template fills in from other values
    (:func:`filled_in_by_the_template`) may hold anything.
    """
    found: list[Difference] = []
    for name in sorted(SETTING_NAMES - DERIVED_SETTINGS):
        wanted = (env.get(name) or "").strip()
        actual = app.get(name)
        if wanted:
            if actual is None:
                found.append(Difference(name, "missing on the app"))
            elif actual.strip() != wanted:
                found.append(Difference(name, "differs"))
        elif actual and actual.strip() != (DEFAULTS.get(name) or "") and not filled_in_by_the_template(name, env):
            found.append(Difference(name, "only on the app"))
    vault = (env.get("AZURE_KEY_VAULT_ENDPOINT") or "").strip().rstrip("/")
    if vault and (app.get("KEY_VAULT_URL") or "").strip().rstrip("/") != vault:
        found.append(Difference("KEY_VAULT_URL", "differs" if app.get("KEY_VAULT_URL") else "missing on the app"))
    return sorted(found, key=lambda d: d.name)


def filled_in_by_the_template(name: str, env: Mapping[str, str]) -> bool:
    """Settings the template sets without an azd value of their name: the auth mode (from whether a client
    secret is used), the client secret's name (its default), and a secret's name when the azd environment
    gives the secret's value (the template stores it under its default name: JIRA_WEBHOOK_SECRET_NAME from
    the value named without _NAME, POINT_WEBHOOK_KEY_SECRET_NAME from the one without _SECRET_NAME)."""
    if name in ("POINT_AUTH_MODE", "POINT_CLIENT_SECRET_NAME", "POINT_TENANT_ID"):  # POINT_TENANT_ID: the tenant
        return True
    if not name.endswith("_SECRET_NAME"):
        return False
    values = (name.removesuffix("_NAME"), name.removesuffix("_SECRET_NAME"))
    return any((env.get(value) or "").strip() for value in values)


MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}  # as doctor prints them


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # ok, warn, fail, skip
    message: str
    hint: str = ""


def check_deployed(arm: ArmClient, env: Mapping[str, str], health: Callable[[str], int | None]) -> list[Check]:
    """doctor --deployed: the app's settings against the azd environment, then its health route."""
    checks: list[Check] = []
    try:
        app = arm.app_settings()
    except ArmError as exc:
        checks.append(Check("app settings", "fail", str(exc), arm_hint(exc)))
    else:
        compared = [n for n in SETTING_NAMES - DERIVED_SETTINGS if (env.get(n) or "").strip() or n in app]
        differences = settings_differences(app, env)
        if differences:
            checks.append(
                Check(
                    "app settings",
                    "fail",
                    f"{len(differences)} setting(s) differ from the azd environment: "
                    + ", ".join(map(str, differences)),
                    "change settings only with azd env set NAME value, then azd provision (a setting set on the app "
                    "itself is removed by the next provision)",
                )
            )
        else:
            checks.append(
                Check("app settings", "ok", f"the app's {len(compared)} bridge setting(s) match the azd environment")
            )
    url = f"{env.get('FUNCTION_APP_URL', '').rstrip('/')}/api/health"
    status = health(url)
    if status == 200:
        checks.append(Check("health", "ok", f"{url} answered 200"))
    else:
        checks.append(
            Check(
                "health",
                "fail",
                f"{url} answered {status or 'nothing'}",
                "the app may still be starting (try again in a minute), or the deployment failed: "
                "azd deploy, then look at the function app's log stream",
            )
        )
    return checks


def not_deployed(exc: ArmError) -> bool:
    """ARM knows the app but not the function: the code is not deployed yet (ARM's "not found" for the app or
    its resource group is another matter)."""
    return exc.http_status == 404 and exc.code not in (
        "ResourceNotFound",
        "ResourceGroupNotFound",
        "SubscriptionNotFound",
    )


def arm_hint(exc: ArmError) -> str:
    if exc.token:
        return "sign in with azd auth login (as the account that ran azd provision)"
    if exc.http_status == 403 or exc.code == "AuthorizationFailed":
        return "sign in to azd as the account that provisioned the app (Contributor on its resource group)"
    if exc.http_status == 404:
        return (
            "the app or function is not there: run azd deploy first (function keys exist once the code is "
            "deployed), and check AZURE_RESOURCE_GROUP and AZURE_FUNCTION_APP_NAME in the azd environment"
        )
    if exc.unreachable is not None:
        return exc.unreachable.hint
    return "run it again: every step of setup is safe to repeat"


# == 4. the desk's side ==================================================================


def jira_instructions(url: str, settings: Settings, projects: Sequence[str], secret_name: str) -> list[str]:
    status = settings.raw("JIRA_APPROVED_STATUS")
    scope = (
        f"project in ({', '.join(projects)})"
        if projects
        else "project = <your project key> (azd env set JIRA_PROJECT_KEY KEY fills it in)"
    )
    lines = [
        "In Jira: Settings (gear) > System > WebHooks > Create a WebHook",
        "  Name:    Point Desk Bridge",
        "  Status:  Enabled",
        f"  URL:     {url}",
        f'  JQL:     {scope} AND status = "{status}"',
        "  Events:  Issue: updated (only)",
        "  Exclude body: unchecked",
    ]
    if secret_name:
        lines.append(
            f"  Secret:  the Jira webhook secret you set in the azd environment (in Key Vault as {secret_name})"
        )
    else:
        lines.append(
            "  Secret:  none: signatures are off (set a Jira webhook secret in the azd environment, "
            "azd provision, then fill it in here)"
        )
    return lines


def servicenow_instructions(app_url: str, key: FunctionKey, secret_name: str) -> list[str]:
    value = key.value if key.created else f"(key {key.name}, shown when it was created)"
    lines = [
        "In ServiceNow: System Properties > All Properties > New (sys_properties.list), one each:",
        f"  deskbridge.url           string     {app_url.rstrip('/')}",
        f"  deskbridge.function_key  password2  {value}",
    ]
    if secret_name:
        lines.append(
            f"  deskbridge.signing_key   password2  the ServiceNow signing secret you set in the azd "
            f"environment (whsec_..., in Key Vault as {secret_name})"
        )
    lines.append("  Read roles and Write roles: admin. Then the workflow's Run Script (docs/servicenow.md, 3).")
    return lines


def provision_instructions(url: str) -> list[str]:
    return ["Any other desk or flow: POST the request JSON (docs/power-automate.md, README) to", f"  {url}"]


# == the whole run =======================================================================


@dataclass
class AdminApp:
    """A Syskit Point admin client for this run only (Point.Admin); its secret lives in memory only."""

    point: PointClient
    client_id: str


@dataclass
class SetupReport:
    keys: list[FunctionKey] = field(default_factory=list)
    registered: bool | None = None  # None: not attempted
    stored_secret: str = ""
    checks: list[Check] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the steps that failed, to run setup again for
    not_deployed: bool = False  # provisioned, code not deployed yet (azd up's postprovision): keys come later


def run_setup(
    env: Mapping[str, str],
    arm: ArmClient,
    *,
    admin: AdminApp | None,
    health: Callable[[str], int | None],
    say: Callable[[str], None],
    desks: Sequence[str] = (),
    jira_projects: Sequence[str] = (),
) -> SetupReport:
    """Steps 1 to 4; each says what it did as it goes. A failed step is named and the others still run."""
    report = SetupReport()
    settings = Settings(dict(env))
    app_url = env["FUNCTION_APP_URL"].rstrip("/")
    say(f"Point Desk Bridge setup: {env['AZURE_FUNCTION_APP_NAME']} in {env['AZURE_RESOURCE_GROUP']}")

    say("\n1. Function keys (one per route, added once)")
    wanted = desks_of(env, desks)
    if admin is not None:
        wanted = [*wanted, EVENTS_FUNCTION]
    keys: dict[str, FunctionKey] = {}
    for function in wanted:
        try:
            key = ensure_key(arm, function)
        except ArmError as exc:
            if not_deployed(exc):
                report.not_deployed = True
                say(
                    "   the app has no functions yet: its code is not deployed (azd deploy, next in azd up); "
                    "setup runs again after it (the postdeploy hook) and adds the keys then"
                )
                break
            report.failed.append(f"key for {function}")
            say(f"   FAIL {function}: {exc}\n        -> {arm_hint(exc)}")
            continue
        keys[function] = key
        report.keys.append(key)
        if key.created and function == EVENTS_FUNCTION:
            say(f"   {function}: added key {key.name} (Syskit Point gets it with the webhook; not shown)")
        elif key.created:
            say(f"   {function}: added key {key.name}; its URL, shown this once:\n      {key.url(app_url)}")
        else:
            say(
                f"   {function}: key {key.name} exists (not shown again: az functionapp function keys list "
                f"-g {env['AZURE_RESOURCE_GROUP']} -n {env['AZURE_FUNCTION_APP_NAME']} --function-name {function})"
            )

    say("\n2. Syskit Point webhook")
    secret_names = settings.point_webhook_key_secret_names
    if report.not_deployed:
        say("   after azd deploy")
    elif admin is None:
        say(
            "   skipped: no Syskit Point admin app given (setup --point-admin-client-id ID, its secret asked for "
            "at the prompt); the runtime's app needs Point.Provisioning only"
        )
    elif not secret_names:
        report.failed.append("webhook")
        say(
            "   FAIL the webhook signature key has no secret name: azd env set POINT_WEBHOOK_KEY_SECRET_NAME "
            "point-webhook-key, azd provision, then setup again"
        )
    elif EVENTS_FUNCTION in keys:
        _webhook(report, admin, arm, env, keys[EVENTS_FUNCTION].url(app_url, shown=True), secret_names[0], say)

    say("\n3. The deployed app (doctor --deployed)")
    report.checks = check_deployed(arm, env, health)
    if report.not_deployed:  # no code, no health route yet: not a failure of this run
        report.checks = [c if c.name != "health" else Check(c.name, "skip", "after azd deploy") for c in report.checks]
    width = max(len(c.name) for c in report.checks)
    for item in report.checks:
        say(f"   {MARKS[item.state]:<5}{item.name:<{width}}  {item.message}")
        if item.hint and item.state != "ok":
            say(f"   {'':<5}{'':<{width}}  -> {item.hint}")
        if item.state == "fail":
            report.failed.append(item.name)

    say("\n4. On the desk's side")
    for function in wanted:
        key = keys.get(function)
        if key is None or function == EVENTS_FUNCTION:
            continue
        if function == "jira":
            lines = jira_instructions(
                key.url(app_url),
                settings,
                jira_projects,
                settings.raw("JIRA_WEBHOOK_SECRET_NAME").split(",")[0].strip(),
            )
        elif function == "servicenow":
            lines = servicenow_instructions(
                app_url, key, settings.raw("SERVICENOW_SIGNING_SECRET_NAME").split(",")[0].strip()
            )
        else:
            lines = provision_instructions(key.url(app_url))
        for line in lines:
            say("   " + line)
    if report.not_deployed:
        say("   after azd deploy")
    if report.failed:
        say(
            f"\nNot finished: {', '.join(report.failed)}. Fix what is said above and run "
            "python -m deskbridge setup again (every step is safe to repeat)."
        )
    elif report.not_deployed:
        say("\nSetup continues after azd deploy.")
    else:
        say("\nSetup finished.")
    return report


def _webhook(
    report: SetupReport,
    admin: AdminApp,
    arm: ArmClient,
    env: Mapping[str, str],
    url: str,
    secret_name: str,
    say: Callable[[str], None],
) -> None:
    shown = url.split("?", 1)[0] + "?code=***"
    try:
        key = signature_key(admin.point)
        vault = env.get("AZURE_KEY_VAULT_NAME", "")
        if not vault:
            raise ArmError("the azd environment has no AZURE_KEY_VAULT_NAME (the template's output)", transient=False)
        # The key first: once registered, events arrive, and the bridge needs the key to accept them.
        arm.set_secret(vault, secret_name, key)
        report.stored_secret = secret_name
        say(f"   stored Syskit Point's webhook signature key in vault {vault} as {secret_name}")
        report.registered, removed = register_webhook(admin.point, url)
        if removed:
            say(f"   removed {removed} registration(s) of the same route with an older key")
        say(
            f"   {'registered' if report.registered else 'already registered:'} {shown} "
            f"(events: {', '.join(EVENT_TYPES)})"
        )
    except PointError as exc:
        report.failed.append("webhook")
        hint = (
            "the admin app needs the Point.Admin application permission of the Syskit Point API, with admin consent"
            if exc.http_status in (401, 403)
            else "run setup again"
        )
        say(f"   FAIL Syskit Point: {exc}\n        -> {hint}")
    except ArmError as exc:
        report.failed.append("webhook")
        say(f"   FAIL storing the signature key: {exc}\n        -> {arm_hint(exc)}")


def local_settings(env: Mapping[str, str], names: Iterable[str] = SETTING_NAMES) -> dict[str, str]:
    """The ``Values`` of a local.settings.json for ``func start`` against the deployed vault and Syskit Point.

    Only the bridge's settings (never a secret's value: the azd environment's secret values are not
    settings), the vault the template made, and local storage (Azurite) for the local run's own records.
    """
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    for name in sorted(names):
        value = (env.get(name) or "").strip()
        if value and name != "AzureWebJobsStorage":
            values[name] = value
    if "KEY_VAULT_URL" not in values and env.get("AZURE_KEY_VAULT_ENDPOINT"):
        values["KEY_VAULT_URL"] = env["AZURE_KEY_VAULT_ENDPOINT"]
    if "POINT_TENANT_ID" not in values and env.get("AZURE_TENANT_ID"):  # the template's default, too
        values["POINT_TENANT_ID"] = env["AZURE_TENANT_ID"]
    return values
