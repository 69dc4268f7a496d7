"""``python -m deskbridge doctor``: find a misconfiguration without reading code.

Each check is a named function returning a :class:`Result` (``ok``,
``warn``, ``fail`` or ``skip``, a message, and a hint saying what to do).
They run in order; a check whose prerequisite failed is skipped, so the
first failure is the one to fix. The command exits 1 when any check fails.

Adding a check elsewhere (another module)::

    from deskbridge.doctor import Context, Result, check

    @check("secret expiry", after="key vault", requires=("key vault",))
    def secret_expiry(ctx: Context) -> Result:
        ...
        return Result.warn("point-client-secret expires in 12 days", "create a new secret and put it in Key Vault")

Modules listed in :data:`EXTENSIONS` are imported before the checks run.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from deskbridge.causes import in_full
from deskbridge.cli import command, emit

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

# Modules that add checks with @check when imported (absent ones are left out).
EXTENSIONS: list[str] = ["deskbridge.expiry", "deskbridge.desk_doctor"]


@dataclass(frozen=True)
class Result:
    state: str  # ok, warn, fail or skip
    message: str
    hint: str = ""

    @classmethod
    def ok(cls, message: str) -> Result:
        return cls(OK, message)

    @classmethod
    def warn(cls, message: str, hint: str = "") -> Result:
        return cls(WARN, message, hint)

    @classmethod
    def fail(cls, message: str, hint: str = "") -> Result:
        return cls(FAIL, message, hint)

    @classmethod
    def skip(cls, message: str) -> Result:
        return cls(SKIP, message)


@dataclass
class Context:
    """What the checks share: the runtime (settings and clients) and what earlier checks found."""

    runtime: Any
    found: dict[str, Any] = field(default_factory=dict)  # e.g. "templates": the list Syskit Point returned

    @property
    def settings(self) -> Any:
        return self.runtime.settings


CheckFunction = Callable[[Context], Result]


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFunction
    requires: tuple[str, ...] = ()


CHECKS: list[Check] = []


def check(
    name: str, *, requires: Sequence[str] = (), after: str | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check. ``requires``: checks that must not have failed; ``after``: run right after that one."""

    def register(function: CheckFunction) -> CheckFunction:
        entry = Check(name, function, tuple(requires))
        CHECKS[:] = [c for c in CHECKS if c.name != name]  # re-registering replaces
        index = next((i + 1 for i, c in enumerate(CHECKS) if c.name == after), len(CHECKS)) if after else len(CHECKS)
        CHECKS.insert(index, entry)
        return function

    return register


@dataclass(frozen=True)
class Outcome:
    name: str
    state: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "state": self.state, "message": self.message, "hint": self.hint}


def run_checks(runtime: Any, checks: Sequence[Check] | None = None) -> list[Outcome]:
    """Run every check in order; never raises."""
    from deskbridge.settings import SETTINGS_HINT, ConfigurationError

    _load_extensions()
    context = Context(runtime)
    outcomes: list[Outcome] = []
    blocked: set[str] = set()
    for entry in list(CHECKS if checks is None else checks):
        waiting_on = [name for name in entry.requires if name in blocked]
        if waiting_on:
            blocked.add(entry.name)
            outcomes.append(Outcome(entry.name, SKIP, f"not checked: {', '.join(waiting_on)} failed", ""))
            continue
        try:
            result = entry.run(context)
        except ConfigurationError as exc:
            result = Result.fail(f"setting {exc.setting} {exc.problem}", SETTINGS_HINT)
        except Exception as exc:  # a check must say what broke, not crash the others
            result = Result.fail(f"{type(exc).__name__}: {_first_line(exc)}")
        if result.state == FAIL:
            blocked.add(entry.name)
        outcomes.append(Outcome(entry.name, result.state, result.message, result.hint))
    return outcomes


def _load_extensions() -> None:
    for module in EXTENSIONS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "no detail"


# == the checks =====================================================================

@check("settings")
def check_settings(ctx: Context) -> Result:
    from deskbridge.settings import SETTINGS_HINT, check_all

    problems = check_all(ctx.settings)
    if problems:
        return Result.fail("; ".join(f"{p.setting} {p.problem}" for p in problems), SETTINGS_HINT)
    return Result.ok("every setting is present and well formed")


def secret_hint(exc: Any, setting: str, vault: str) -> str:
    """What to do about a :class:`~deskbridge.secrets.SecretUnavailable` (doctor and the commands say the same)."""
    reason = exc.reason
    if getattr(exc, "unreachable", None) is not None:
        return exc.unreachable.hint
    if "not found" in reason:
        return f"create the secret in {vault}, or correct {setting}"
    if "access denied" in reason:
        return ("give the function's managed identity (locally: your az login account) the Key Vault Secrets User "
                "role on the vault")
    if "authentication" in reason:
        return ("the identity reading Key Vault could not sign in: in Azure check the managed identity; locally run "
                "az login or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET")
    if "empty" in reason:
        return f"put a value in the secret named by {setting}"
    return f"check KEY_VAULT_URL ({vault}) and that this machine can reach it"


@check("key vault", requires=("settings",))
def check_key_vault(ctx: Context) -> Result:
    """Read the Syskit Point client secret (fresh, not from a cache)."""
    from deskbridge.secrets import SecretUnavailable

    s = ctx.settings
    if s.point_auth_mode != "secret":
        return Result.skip(f"POINT_AUTH_MODE is {s.point_auth_mode}: no client secret is read")
    name = s.point_client_secret_name
    try:
        ctx.runtime.secrets.get(name, refresh=True)
    except SecretUnavailable as exc:
        if exc.unreachable is not None:
            ctx.found["vault unreachable"] = exc.unreachable
        hint = secret_hint(exc, "POINT_CLIENT_SECRET_NAME", s.key_vault_url)
        return Result.fail(in_full(str(exc), exc.unreachable), hint)
    return Result.ok(f"read the client secret {name!r} from {s.key_vault_url}")


# Settings naming further secrets: each configured one must be readable.
OTHER_SECRET_SETTINGS = (
    "POINT_WEBHOOK_KEY_SECRET_NAME",
    "JIRA_WEBHOOK_SECRET_NAME",
    "JIRA_API_TOKEN_SECRET_NAME",
    "SERVICENOW_PASSWORD_SECRET_NAME",
    "SERVICENOW_TOKEN_SECRET_NAME",
    "SERVICENOW_SIGNING_SECRET_NAME",
    "PROVISION_SIGNING_SECRET_NAME",
)


@check("other secrets", requires=("settings",))
def check_other_secrets(ctx: Context) -> Result:
    from deskbridge.secrets import SecretUnavailable

    s = ctx.settings
    named = [(setting, name) for setting in OTHER_SECRET_SETTINGS
             for name in (part.strip() for part in s.raw(setting).split(",")) if name]
    if not named:
        return Result.ok("no other secret is configured (webhook signatures are not required, no write-back)")
    if "vault unreachable" in ctx.found:  # each read would wait and fail as the key vault check did
        return Result.skip(f"not read: Key Vault unreachable (see key vault); {', '.join(n for _, n in named)}")
    failures: list[str] = []
    first: tuple[str, SecretUnavailable] | None = None
    for index, (setting, name) in enumerate(named):
        try:
            ctx.runtime.secrets.get(name, refresh=True)
        except SecretUnavailable as exc:
            failures.append(f"{setting}: {in_full(str(exc), exc.unreachable)}")
            first = first or (setting, exc)
            if exc.unreachable is not None:  # the other reads would wait and fail the same way
                if index + 1 < len(named):
                    failures.append(f"{len(named) - index - 1} more secret(s) not tried")
                break
    if first is not None:
        return Result.fail("; ".join(failures), secret_hint(first[1], first[0], s.key_vault_url))
    return Result.ok("read " + ", ".join(repr(name) for _, name in named))


@check("secret expiry", requires=("settings",))
def check_secret_expiry(ctx: Context) -> Result:
    from deskbridge.expiry import doctor_check  # in its own module: the expiry warning lives there too

    return doctor_check(ctx)


# Entra ID error codes: what went wrong, and what to do.
ENTRA_CODES: dict[str, tuple[str, str]] = {
    "AADSTS7000222": ("the client secret has expired",
                      "create a new client secret on the integration app (POINT_CLIENT_ID) and put its value in the "
                      "Key Vault secret named by POINT_CLIENT_SECRET_NAME; see docs/operations.md"),
    "AADSTS7000215": ("the client secret is wrong",
                      "put the current client secret value (not its id) of app POINT_CLIENT_ID in the Key Vault "
                      "secret named by POINT_CLIENT_SECRET_NAME"),
    "AADSTS500011": ("POINT_API_APP_ID does not name an app in this tenant (wrong Syskit Point API app id)",
                     "set POINT_API_APP_ID to the Application (client) ID of the Syskit Point API app in Entra ID "
                     "(Enterprise applications, Syskit Point API)"),
    "AADSTS700016": ("the app POINT_CLIENT_ID is not found in tenant POINT_TENANT_ID",
                     "check POINT_CLIENT_ID and POINT_TENANT_ID against the app registration's Overview page"),
    "AADSTS90002": ("tenant POINT_TENANT_ID not found", "set POINT_TENANT_ID to the Directory (tenant) ID"),
    "AADSTS70021": ("no federated credential of the app trusts this managed identity",
                     "add a federated credential for the function's managed identity to the app POINT_CLIENT_ID: "
                     "issuer https://login.microsoftonline.com/POINT_TENANT_ID/v2.0, subject = the identity's object "
                     "(principal) id, audience api://AzureADTokenExchange"),
}


def entra_code(exc: BaseException) -> str | None:
    """The Entra ID error code behind a token failure.

    Read from the exception chain when it carries Entra ID's text, else from
    the hint :mod:`deskbridge.point` put in the message for that code.
    """
    from deskbridge import point

    seen: set[int] = set()
    texts = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    text = " ".join(texts)
    for code in re.findall(r"AADSTS\d+", text):
        if code in ENTRA_CODES:
            return code
    for code, _kind, hint in getattr(point, "_ENTRA_HINTS", ()):
        if hint in text:
            return code
    return None


@check("token", requires=("settings", "key vault"))
def check_token(ctx: Context) -> Result:
    from deskbridge.point import TokenError

    s = ctx.settings
    try:
        ctx.runtime.point.tokens.token()
    except TokenError as exc:
        code = entra_code(exc)
        if code in ENTRA_CODES:
            what, hint = ENTRA_CODES[code]
            return Result.fail(f"Entra ID refused the token request ({code}): {what}", hint)
        hint = ("check that this machine reaches Entra ID (AZURE_AUTHORITY_HOST for sovereign clouds)"
                if exc.transient else "see the message; docs/operations.md lists the usual causes")
        if exc.unreachable is not None:
            hint = exc.unreachable.hint
        return Result.fail(in_full(str(exc), exc.unreachable), hint)
    return Result.ok(f"got a token for {s.point_scope} as app {s.point_client_id} ({s.point_auth_mode} mode)")


def point_problem(exc: Any, point_url: str) -> tuple[str, str]:
    """(what, what to do) for a failed Syskit Point call: doctor and the commands say the same."""
    if exc.status == 403:
        return ("Syskit Point refused the token (403): the Point.Provisioning permission is missing or not consented",
                "in Entra ID, app POINT_CLIENT_ID > API permissions: add the application permission "
                "Point.Provisioning of the Syskit Point API and grant admin consent")
    if exc.status == 401:
        return ("Syskit Point did not accept the token (401)",
                "POINT_API_APP_ID must be the Syskit Point API app of the tenant that runs POINT_URL")
    if exc.status == 404:
        return str(exc), f"check POINT_URL ({point_url}): it is the Syskit Point base URL"
    if exc.unreachable is not None:
        return in_full(str(exc), exc.unreachable), exc.unreachable.hint
    if exc.token:
        return str(exc), "python -m deskbridge doctor says which step fails (Key Vault, the token) and what to do"
    if exc.status is None:
        return str(exc), f"check POINT_URL ({point_url}) and that this machine can reach it"
    return str(exc), "Syskit Point answered with an error: try again, then contact Syskit support"


@check("syskit point", requires=("token",))
def check_point(ctx: Context) -> Result:
    from deskbridge.point import PointError

    s = ctx.settings
    try:
        templates = ctx.runtime.point.templates()
    except PointError as exc:
        return Result.fail(*point_problem(exc, s.point_url))
    ctx.found["templates"] = templates
    return Result.ok(f"{s.point_url} answered: {len(templates)} provisioning template(s)")


def _template_type(template: dict[str, Any]) -> str | None:
    from deskbridge.model import EVENT_WORKSPACE_TYPES, workspace_type_from_text

    text = str(template.get("workspaceType") or template.get("type") or "")
    return EVENT_WORKSPACE_TYPES.get(text) or workspace_type_from_text(text)


@check("templates", requires=("syskit point",))
def check_templates(ctx: Context) -> Result:
    s = ctx.settings
    templates = {t.get("id"): t for t in ctx.found.get("templates", [])}
    known = {str(k) for k in templates}
    allowed = sorted(s.template_ids)
    defaults = s.default_template_ids
    problems = []
    for template_id in allowed:
        if str(template_id) not in known:
            problems.append(f"template {template_id} in POINT_TEMPLATE_IDS does not exist in Syskit Point")
    for kind, template_id in sorted(defaults.items()):
        label = f"POINT_DEFAULT_TEMPLATE_ID ({kind or 'any type'})"
        template = templates.get(template_id) or templates.get(str(template_id))
        if template is None:
            problems.append(f"template {template_id} in {label} does not exist in Syskit Point")
            continue
        if allowed and template_id not in s.template_ids:
            problems.append(f"template {template_id} in {label} is not in POINT_TEMPLATE_IDS")
        actual = _template_type(template)
        if kind and actual and actual != kind:
            problems.append(f"template {template_id} in {label} is a {actual} template")
    if problems:
        listed = ", ".join(f"{t.get('id')} {t.get('name') or t.get('displayName') or ''} ({_template_type(t) or '?'})"
                           for t in templates.values())
        return Result.fail("; ".join(problems),
                           f"python -m deskbridge templates lists them (here: {listed or 'none'}); correct the setting")
    if not allowed:
        return Result.warn("POINT_TEMPLATE_IDS is empty: a desk may name any template",
                           "list the templates the desks may use in POINT_TEMPLATE_IDS")
    shown = ", ".join(f"{kind or 'any'}={number}" for kind, number in sorted(defaults.items()))
    return Result.ok(f"templates {', '.join(map(str, allowed))} exist" + (f"; defaults {shown}" if defaults else ""))


@check("webhooks", requires=("token",))
def check_webhooks(ctx: Context) -> Result:
    from deskbridge.point import PointError

    try:
        listed = ctx.runtime.point.call("GET", "/v1.0/webhooks/endpoints") or []
    except PointError as exc:
        if exc.status == 403:
            return Result.warn("cannot list Syskit Point webhooks: the app lacks Point.Admin",
                               "fine if an admin registered the bridge's /api/point/events; else grant Point.Admin, "
                               "or register it in Syskit Point")
        return Result.warn(f"cannot list Syskit Point webhooks: {exc}")
    endpoints = [e.get("endpoint", "") for e in listed if isinstance(e, dict)]
    ours = [e for e in endpoints if "/api/point/events" in e]
    if not ours:
        return Result.warn("no webhook to the bridge's /api/point/events is registered: tickets will not hear "
                           "when provisioning completes",
                           "python -m deskbridge webhooks register https://<app>.azurewebsites.net/api/point/events"
                           "?code=<function key>")
    if not ctx.settings.point_webhook_key_secret_names:
        return Result.fail(f"{len(ours)} webhook(s) registered, but POINT_WEBHOOK_KEY_SECRET_NAME is not set: "
                           "the bridge refuses every event (503) since it cannot verify them",
                           "put Syskit Point's webhook signature key in Key Vault and name it in "
                           "POINT_WEBHOOK_KEY_SECRET_NAME")
    return Result.ok(f"{len(ours)} webhook(s) registered to /api/point/events")


@check("storage")
def check_storage(ctx: Context) -> Result:
    from deskbridge.causes import diagnose
    from deskbridge.settings import ConfigurationError

    runtime = ctx.runtime
    try:
        next(iter(runtime.ledger.by_status(("queued",))), None)
        retry, retry_poison = runtime.retry_queue.depth()
        desk, desk_poison = runtime.desk_queue.depth()
    except ConfigurationError:
        raise
    except Exception as exc:
        cause = diagnose(exc, service="storage", setting="AzureWebJobsStorage")
        if cause is not None:
            return Result.fail(cause.message, cause.hint)
        return Result.fail(f"storage refused the bridge ({type(exc).__name__}: {_first_line(exc)[:160]})",
                           "in Azure, the function's identity needs Storage Table Data Contributor and Storage Queue "
                           "Data Contributor on the storage account named by AzureWebJobsStorage")
    message = (f"ledger table {ctx.settings.ledger_table} reachable; queued retries {retry}, desk updates {desk}, "
               f"poisoned {retry_poison + desk_poison}")
    if retry_poison or desk_poison:
        return Result.warn(message, "python -m deskbridge list shows failed requests; replay them once the cause "
                                    "is fixed (docs/operations.md)")
    return Result.ok(message)


# == the command ====================================================================

_MARK = {OK: "ok", WARN: "WARN", FAIL: "FAIL", SKIP: "skip"}


@command("doctor", "check settings, Key Vault, the Syskit Point token, templates, webhooks and storage; "
                   "say what to fix")
def _doctor_setup(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import logging

    from deskbridge.cli import runtime

    # doctor reports each failure itself; the SDK's own warning about it is noise here.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    outcomes = run_checks(runtime())
    failed = [o for o in outcomes if o.state == FAIL]
    if args.json:
        emit(args, {"ok": not failed, "checks": [o.as_dict() for o in outcomes]})
        return 1 if failed else 0
    width = max(len(o.name) for o in outcomes)
    for outcome in outcomes:
        print(f"{_MARK[outcome.state]:<5} {outcome.name:<{width}}  {outcome.message}")
        if outcome.hint and outcome.state in (FAIL, WARN):
            print(f"{'':<5} {'':<{width}}  -> {outcome.hint}")
    if failed:
        print(f"\n{len(failed)} check(s) failed; fix the first one first: {failed[0].name}.")
        return 1
    print("\nAll checks passed." if not any(o.state == WARN for o in outcomes) else "\nNo check failed (see WARN).")
    return 0
