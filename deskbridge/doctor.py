"""doctor: find a misconfiguration without reading code (``python -m deskbridge doctor``).

The checks, in order: settings, Key Vault, the other secrets, their expiry,
the Syskit Point token, Syskit Point, templates, webhooks, storage (which
creates the bridge's tables and queues where they are missing, and says so),
then the desks (deskbridge.desk_doctor). Each returns a
:class:`~deskbridge.checks.Result` with a hint; a check whose prerequisite
failed is skipped, so the first failure is the one to fix. The machinery is
deskbridge.checks; the command that prints them is deskbridge.cli.

:func:`secret_hint` and :func:`point_problem` say what to do about a Key
Vault or Syskit Point failure; the commands say the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from deskbridge import checks
from deskbridge.causes import diagnose, in_full
from deskbridge.checks import CHECKS, FAIL, OK, SKIP, WARN, Check, Context, Outcome, Result, check
from deskbridge.errors import PointError, SecretUnavailable, StorageError, TokenError
from deskbridge.runtime import Runtime
from deskbridge.settings import SETTINGS_HINT

__all__ = ["CHECKS", "FAIL", "OK", "SKIP", "WARN", "Check", "Context", "Outcome", "Result", "check", "run_checks"]


def run_checks(runtime: Runtime, only: Sequence[Check] | None = None) -> list[Outcome]:
    """Every check, the desks' too, in order; never raises."""
    from deskbridge import desk_doctor  # noqa: F401 - registers the desk checks after these

    return checks.run(runtime, only)


# == the checks =====================================================================

@check("settings")
def check_settings(ctx: Context) -> Result:
    from deskbridge.settings import check_all

    problems = check_all(ctx.settings)
    if problems:
        return Result.fail("; ".join(f"{p.setting} {p.problem}" for p in problems), SETTINGS_HINT)
    return Result.ok("every setting is present and well formed")


def secret_hint(exc: SecretUnavailable, setting: str, vault: str) -> str:
    """What to do about a Key Vault failure (doctor and the commands say the same)."""
    reason = exc.reason
    if exc.unreachable is not None:
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
    "BRIDGE_CALLBACK_SIGNING_SECRET_NAME",
)


@check("other secrets", requires=("settings",))
def check_other_secrets(ctx: Context) -> Result:
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


@check("callbacks", requires=("settings",))
def check_callbacks(ctx: Context) -> Result:
    """Where outcome callbacks may go and how they are signed (docs/security.md, outcome callbacks)."""
    s = ctx.settings
    policy = s.callback_policy
    where = f"to {', '.join(policy.hosts)} only" if policy.hosts else "to public hosts"
    if policy.allow_loopback:
        where += " and loopback (BRIDGE_CALLBACK_ALLOW_LOOPBACK)"
    if policy.allow_loopback and s.environ("WEBSITE_SITE_NAME"):
        return Result.warn(f"callbacks may go {where} in Azure",
                           "BRIDGE_CALLBACK_ALLOW_LOOPBACK is for local runs: leave it empty in Azure")
    if not s.callback_signing_secret_names and s.signing_secret_names("provision"):
        return Result.warn(
            f"callbacks go {where}, unsigned: /api/provision callers are signed, their callbacks are not",
            "put a whsec_ secret of its own in Key Vault and name it in BRIDGE_CALLBACK_SIGNING_SECRET_NAME "
            "(never the inbound PROVISION_SIGNING_SECRET_NAME's); receivers verify with it",
        )
    signed = "signed" if s.callback_signing_secret_names else "unsigned (BRIDGE_CALLBACK_SIGNING_SECRET_NAME is empty)"
    return Result.ok(f"callbacks go {where}, {signed}")


@check("secret expiry", requires=("settings",))
def check_secret_expiry(ctx: Context) -> Result:
    """Every configured secret's expiry date, from the cache the checks above filled (deskbridge.expiry)."""
    from deskbridge import expiry

    found = expiry.report(ctx.settings, ctx.runtime.secrets.get, ctx.runtime.clock.now())
    return Result(found.state, found.message, found.hint)


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
    from deskbridge.point import ENTRA_HINTS

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
    for code, _kind, hint in ENTRA_HINTS:
        if hint in text:
            return code
    return None


@check("token", requires=("settings", "key vault"))
def check_token(ctx: Context) -> Result:
    s = ctx.settings
    try:
        token = ctx.runtime.point.tokens.token()
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
    got = f"got a token for {s.point_scope} as app {s.point_client_id} ({s.point_auth_mode} mode)"
    if "Point.Admin" in token_roles(token):
        return Result.warn(f"{got}, and it holds Point.Admin: the bridge needs Point.Provisioning only",
                           "in Entra ID, app POINT_CLIENT_ID > API permissions: remove Point.Admin (and its consent); "
                           "python -m deskbridge setup --point-admin-client-id registers the webhook with an admin "
                           "app given for that run only")
    return Result.ok(got)


def token_roles(token: str) -> frozenset[str]:
    """The app roles (``roles`` claim) of an Entra ID access token, read without checking its signature:
    doctor only advises on what the bridge's own token carries; a token of another shape has none."""
    import base64
    import json

    parts = token.split(".")
    if len(parts) != 3:
        return frozenset()
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return frozenset()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()


def point_problem(exc: PointError, point_url: str) -> tuple[str, str]:
    """(what, what to do) for a failed Syskit Point call: doctor and the commands say the same."""
    if exc.http_status == 403:
        return ("Syskit Point refused the token (403): the Point.Provisioning permission is missing or not consented",
                "in Entra ID, app POINT_CLIENT_ID > API permissions: add the application permission "
                "Point.Provisioning of the Syskit Point API and grant admin consent")
    if exc.http_status == 401:
        return ("Syskit Point did not accept the token (401)",
                "POINT_API_APP_ID must be the Syskit Point API app of the tenant that runs POINT_URL")
    if exc.http_status == 404:
        return str(exc), f"check POINT_URL ({point_url}): it is the Syskit Point base URL"
    if exc.unreachable is not None:
        return in_full(str(exc), exc.unreachable), exc.unreachable.hint
    if exc.token:
        return str(exc), "python -m deskbridge doctor says which step fails (Key Vault, the token) and what to do"
    if exc.http_status is None:
        return str(exc), f"check POINT_URL ({point_url}) and that this machine can reach it"
    return str(exc), "Syskit Point answered with an error: try again, then contact Syskit support"


@check("syskit point", requires=("token",))
def check_point(ctx: Context) -> Result:
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
    try:
        listed = ctx.runtime.point.call("GET", "/v1.0/webhooks/endpoints") or []
    except PointError as exc:
        if exc.http_status == 403:
            # As it should be: listing needs Point.Admin, which the bridge's own app does not hold.
            return Result.skip("not listed: the bridge's app holds Point.Provisioning only, as it should (python -m "
                               "deskbridge setup registers the webhook with an admin app, and doctor --deployed "
                               "checks the deployed app)")
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
    """Create the bridge's tables and queues where missing (the explicit step, Runtime.ensure_storage), then
    read the ledger and the queues' lengths."""
    runtime = ctx.runtime
    try:
        made = runtime.ensure_storage()
        next(iter(runtime.ledger.by_status(("queued",))), None)
        retry, retry_poison = runtime.retry_queue.depth()
        desk, desk_poison = runtime.desk_queue.depth()
    except StorageError as exc:
        cause = diagnose(exc, service="storage", setting="AzureWebJobsStorage")
        if cause is not None:
            return Result.fail(cause.message, cause.hint)
        sdk = exc.__cause__ if exc.__cause__ is not None else exc
        return Result.fail(f"storage refused the bridge ({type(sdk).__name__}: {checks.first_line(sdk)[:160]})",
                           "in Azure, the function's identity needs Storage Table Data Contributor and Storage Queue "
                           "Data Contributor on the storage account named by AzureWebJobsStorage")
    created = f"; created {', '.join(made.created)}" if made.created else ""
    message = (f"ledger table {ctx.settings.ledger_table} reachable; queued retries {retry}, desk updates {desk}, "
               f"poisoned {retry_poison + desk_poison}{created}")
    if retry_poison or desk_poison:
        return Result.warn(message, "python -m deskbridge list shows failed requests; replay them once the cause "
                                    "is fixed (docs/operations.md)")
    return Result.ok(message)
