"""doctor's checks of the desks the bridge is configured for (registered with :func:`deskbridge.checks.check`).

Jira: the API token works (``/rest/api/3/myself``); the account holds the permissions the settings need
in JIRA_PROJECT_KEY (``/rest/api/3/mypermissions``); the transitions JIRA_TRANSITION_COMPLETED and
JIRA_TRANSITION_FAILED name exist in the project's workflows (``/rest/api/3/workflow/search``, which
needs Administer Jira: without it doctor says what to check by hand). ServiceNow: the credentials work
and ``sc_req_item`` is readable (a read with ``sysparm_limit=1``); writing cannot be checked without
writing, so doctor names what to grant.

Each check only reads.
"""

from __future__ import annotations

from deskbridge.causes import in_full
from deskbridge.checks import Context, Result, check
from deskbridge.desks.jira_client import PERMISSION_NAMES, JiraClient
from deskbridge.desks.servicenow_client import ServiceNowClient
from deskbridge.errors import JiraError, SecretUnavailable, ServiceNowError
from deskbridge.settings import Settings

_JIRA_SETTINGS = "JIRA_URL, JIRA_EMAIL and JIRA_API_TOKEN_SECRET_NAME"


def _jira(ctx: Context) -> JiraClient:
    client = ctx.runtime.jira
    if client is None:  # the checks run only when the settings configure Jira
        raise RuntimeError("Jira is not configured")
    return client


def _servicenow(ctx: Context) -> ServiceNowClient:
    client = ctx.runtime.servicenow
    if client is None:  # the check runs only when the settings configure ServiceNow
        raise RuntimeError("ServiceNow is not configured")
    return client


def _needed_permissions(s: Settings) -> dict[str, str]:
    """Permission key -> the feature (and setting) that needs it."""
    needed = {
        "BROWSE_PROJECTS": "every write-back",
        "USER_PICKER": "looking up e-mail addresses hidden by profile visibility",
        "ADD_COMMENTS": "comments on the request",
    }
    if s.jira_internal_note:
        needed["SERVICEDESK_AGENT"] = "internal notes (JIRA_INTERNAL_NOTE=true)"
    if _configured_transitions(s):
        needed["TRANSITION_ISSUES"] = "JIRA_TRANSITION_COMPLETED / JIRA_TRANSITION_FAILED"
    return needed


def _configured_transitions(s: Settings) -> dict[str, str]:
    return {setting: s.raw(setting) for setting in ("JIRA_TRANSITION_COMPLETED", "JIRA_TRANSITION_FAILED")
            if s.raw(setting)}


def _by_hand(s: Settings) -> str:
    return ", ".join(f"{PERMISSION_NAMES[key]} for {why}" for key, why in _needed_permissions(s).items())


@check("jira", requires=("settings", "other secrets"))
def check_jira(ctx: Context) -> Result:
    """The API token works: who Jira says the bridge is."""
    s = ctx.settings
    if not s.jira_configured:
        return Result.skip(f"{_JIRA_SETTINGS} are not all set: no e-mail lookup and no write-back to Jira")
    url, email = s.raw("JIRA_URL"), s.raw("JIRA_EMAIL")
    try:
        me = _jira(ctx).myself()
    except SecretUnavailable as exc:
        return Result.fail(str(exc), "the secret named by JIRA_API_TOKEN_SECRET_NAME must hold the API token")
    except JiraError as exc:
        if exc.http_status == 401:
            return Result.fail(
                f"Jira refused the API token (401) for {email}",
                "create an API token as that account (id.atlassian.com > Security > API tokens), put it in the "
                "Key Vault secret named by JIRA_API_TOKEN_SECRET_NAME, and check JIRA_EMAIL is the same account",
            )
        if exc.http_status == 403:
            return Result.fail(f"Jira refused {email} (403): {exc.detail or 'no access to this site'}",
                               "give the account a Jira product licence on this site (admin.atlassian.com)")
        if exc.unreachable is not None:  # no answer: say why (refused, DNS, certificate, timeout), address included
            return Result.fail(in_full(str(exc), exc.unreachable), exc.unreachable.hint)
        if exc.http_status in (None, 404):
            return Result.fail(str(exc), f"check JIRA_URL ({url}): the site's base URL, e.g. "
                                         "https://contoso.atlassian.net, reachable from this machine")
        return Result.fail(f"{exc}{': ' + exc.detail if exc.detail else ''}", "try again; see status.atlassian.com")
    ctx.found["jira_account"] = me
    who = me.get("displayName") or email
    return Result.ok(f"{url} accepted the API token: acting as {who} ({me.get('accountId', '?')})")


@check("jira permissions", requires=("jira",))
def check_jira_permissions(ctx: Context) -> Result:
    s = ctx.settings
    if not s.jira_configured:
        return Result.skip("no Jira account is configured")
    project = s.jira_project_key
    email = s.raw("JIRA_EMAIL")
    if not project:
        return Result.warn(f"JIRA_PROJECT_KEY is not set: check by hand that {email} has {_by_hand(s)}",
                           "set JIRA_PROJECT_KEY to the service project's key and run doctor again")
    needed = _needed_permissions(s)
    try:
        held = _jira(ctx).my_permissions(project, list(needed))
    except JiraError as exc:
        if exc.http_status == 404:
            return Result.fail(f"Jira has no project {project} that {email} can see (404)",
                               "correct JIRA_PROJECT_KEY, or give the account Browse projects in it")
        if exc.http_status == 400 and "SERVICEDESK_AGENT" in needed:
            return Result.fail(f"Jira does not know the permission SERVICEDESK_AGENT (400: {exc.detail or 'invalid'})",
                               "this is not a Jira Service Management site: set JIRA_INTERNAL_NOTE=false for plain "
                               "comments")
        return Result.fail(f"{exc}{': ' + exc.detail if exc.detail else ''}", "try again")
    missing = [key for key in needed if not held.get(key)]
    if missing:
        listed = "; ".join(f"{PERMISSION_NAMES[key]} ({key}), needed for {needed[key]}" for key in missing)
        hints = []
        if set(missing) - {"USER_PICKER"}:
            hints.append(f"grant the project permissions to a role or group of the account in {project}'s "
                         "permission scheme (Project settings > Permissions)")
        if "SERVICEDESK_AGENT" in missing:
            hints.append("an agent needs a Jira Service Management licence and the Service Desk Team role")
        if "USER_PICKER" in missing:
            hints.append("Browse users and groups is a global permission: Settings > System > Global permissions")
        return Result.fail(f"{email} lacks in {project}: {listed}", "; ".join(hints))
    return Result.ok(f"{email} holds in {project}: " + ", ".join(PERMISSION_NAMES[key] for key in needed))


@check("jira transitions", requires=("jira",))
def check_jira_transitions(ctx: Context) -> Result:
    s = ctx.settings
    wanted = _configured_transitions(s)
    if not s.jira_configured or not wanted:
        return Result.skip("neither JIRA_TRANSITION_COMPLETED nor JIRA_TRANSITION_FAILED is set: outcomes are "
                           "written as notes only")
    project = s.jira_project_key
    named = ", ".join(f"{setting}={name!r}" for setting, name in wanted.items())
    by_hand = f"check by hand that the project's workflow has transitions {named}, out of the status after approval"
    if not project:
        return Result.warn(f"JIRA_PROJECT_KEY is not set: {by_hand}", "set JIRA_PROJECT_KEY to check them here")
    try:
        workflows = _jira(ctx).workflow_transitions(project)
    except JiraError as exc:
        if exc.http_status == 403:
            return Result.warn(f"cannot read workflows (403: {exc.detail or 'forbidden'}): {by_hand}",
                               "only Jira administrators can list workflows; the bridge's account should not be "
                               "one: run doctor once with an administrator's token, or check in the workflow editor")
        return Result.fail(f"{exc}{': ' + exc.detail if exc.detail else ''}", "try again")
    if not workflows:
        return Result.warn(f"no active classic workflow is assigned to {project} (a team-managed project?): {by_hand}")
    from deskbridge.desks.jira import same_status

    missing = [(setting, name) for setting, name in wanted.items()
               if not any(same_status(t, name) for names in workflows.values() for t in names)]
    if missing:
        shown = "; ".join(f"{w}: {', '.join(sorted(filter(None, names))) or 'none'}" for w, names in workflows.items())
        return Result.fail(
            "; ".join(f"{setting}: no transition named {name!r} in {project}'s workflows" for setting, name in missing),
            f"correct the setting to a transition name the workflow has ({shown})",
        )
    return Result.ok(f"{named} exist in {', '.join(sorted(workflows))}")


@check("servicenow", requires=("settings", "other secrets"))
def check_servicenow(ctx: Context) -> Result:
    """The credentials work and sc_req_item is readable; writing would change a ticket, so it is not tried."""
    s = ctx.settings
    if not s.servicenow_configured:
        return Result.skip("SERVICENOW_URL and its credentials are not set: no write-back to ServiceNow")
    url = s.raw("SERVICENOW_URL")
    user = s.raw("SERVICENOW_USERNAME") or "the OAuth token's user"
    token_mode = bool(s.raw("SERVICENOW_TOKEN_SECRET_NAME"))
    secret_setting = "SERVICENOW_TOKEN_SECRET_NAME" if token_mode else "SERVICENOW_PASSWORD_SECRET_NAME"
    writes = "work_notes" + (" and state" if s.raw("SERVICENOW_STATE_COMPLETED") or s.raw("SERVICENOW_STATE_FAILED")
                             else "")
    roles = ("sn_request_write (or itil where the ITSM Roles plugin is not active); snc_platform_rest_api_access "
             "too if the Table API REST_Endpoint ACL is active; see docs/servicenow.md")
    try:
        item = _servicenow(ctx).first_item()
    except SecretUnavailable as exc:
        return Result.fail(str(exc), f"the secret named by {secret_setting} must hold the credential")
    except ServiceNowError as exc:
        detail = f": {exc.detail}" if exc.detail else ""
        if exc.http_status == 401:
            return Result.fail(f"ServiceNow refused the credentials of {user} (401{detail})",
                               f"put the user's current password (or token) in the Key Vault secret named by "
                               f"{secret_setting}; the user must be active and not locked out")
        if exc.http_status == 403:
            return Result.fail(f"ServiceNow let {user} in but an ACL denied reading sc_req_item (403{detail})",
                               f"give {user} {roles}")
        if exc.unreachable is not None:
            return Result.fail(in_full(str(exc), exc.unreachable), exc.unreachable.hint)
        if exc.http_status is None or exc.http_status == 404:
            return Result.fail(f"{exc}{detail}", f"check SERVICENOW_URL ({url}): https://<instance>.service-now.com")
        return Result.fail(f"{exc}{detail}", "try again; the instance may be hibernating or upgrading")
    if item is None:
        return Result.warn(f"{user} can query sc_req_item but sees no record: none exist yet, or read ACLs hide "
                           "them (ServiceNow filters rows it denies rather than refusing)",
                           f"give {user} {roles}")
    return Result.ok(f"{url} accepted {user} and sc_req_item is readable ({item.get('number') or item.get('sys_id')});"
                     f" writing {writes} is not tried here: {user} needs {roles}")
