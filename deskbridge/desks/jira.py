"""Jira Cloud / Jira Service Management.

Inbound: the admin webhook (``jira:issue_updated``), a workflow post
function's "Trigger a webhook" (a top-level ``transition`` object, no
``webhookEvent`` and no changelog) and Automation's "Issue data" bodies
(Jira format ``{"issue": {...}}`` and Automation format, the issue at the
top level). Only a transition to the approved status is an approval; a preflight
(``?validate=true``) maps any issue as if it were one.
Outbound: user e-mail lookup, comments and transitions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from deskbridge.desks import MARKER_PROPERTY, Approval, Ignored, MissingEmail, TicketRef, marker_line
from deskbridge.model import FieldError, InvalidRequest, check_ticket, parse_bool


@dataclass(frozen=True)
class JiraFields:
    """Which Jira field holds what (the Jira field settings and JIRA_APPROVED_STATUS)."""

    approved_status: str = "Approved"
    display_name: str = "summary"
    description: str = "summary"
    owners: str = ""
    members: str = ""
    workspace_type: str = ""
    privacy: str = ""
    template: str = ""
    # What a post function's ``transition`` is matched on: "to_status" or "transition_name".
    post_function_match: str = "to_status"


POST_FUNCTION_MATCHES = {"to_status": "to_status", "transition_name": "transitionName"}


def same_status(a: str, b: str) -> bool:
    """Status (or transition) names compared as people read them: case, spacing and Unicode form aside."""

    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).split()).casefold()

    return norm(a) == norm(b)


def _issue_of(payload: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(payload.get("issue"), dict):
        return payload["issue"]
    if "key" in payload and isinstance(payload.get("fields"), dict):
        return payload  # Automation format: the issue itself
    return None


def _status_change(payload: dict[str, Any]) -> str | None:
    """The status the issue moved to, from the webhook's changelog."""
    changelog = payload.get("changelog")
    if not isinstance(changelog, dict) or not isinstance(changelog.get("items"), list):
        return None
    for item in changelog["items"]:
        if isinstance(item, dict) and _is_status_item(item):
            return str(item.get("toString") or "")
    return ""


def _is_status_item(item: dict[str, Any]) -> bool:
    """The workflow status, not a custom field that happens to be called "Status"."""
    if item.get("fieldId") is not None:  # Cloud: "status" (its "field" may read "status" or "Status")
        return item.get("fieldId") == "status"
    # Server and Data Center send no fieldId.
    return str(item.get("field", "")).lower() == "status" and item.get("fieldtype") != "custom"


def _post_function_move(payload: dict[str, Any], match: str) -> str | None:
    """The status (or transition name) a workflow post function reports, or None if this is no post function."""
    transition = payload.get("transition")
    if payload.get("webhookEvent") is not None or not isinstance(transition, dict):
        return None
    key = POST_FUNCTION_MATCHES.get(match, "to_status")
    value = transition.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest([FieldError(f"transition.{key}", "is required in a workflow post function's body")])
    return value


def _current_status(issue: dict[str, Any]) -> str:
    status = issue.get("fields", {}).get("status")
    if isinstance(status, dict):
        return str(status.get("name") or "")
    return str(status or "")


def _option_text(value: Any) -> str | None:
    """The text of a select, radio, cascading or plain field."""
    if value is None:
        return None
    if isinstance(value, dict):
        for key in ("value", "name", "displayName"):
            if isinstance(value.get(key), str):
                return value[key]
        return None
    if isinstance(value, list):
        texts = [t for t in (_option_text(v) for v in value) if t]
        return texts[0] if texts else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _people(value: Any, role: str, draft_list: list[str], missing: list[MissingEmail]) -> list[FieldError]:
    """Collect e-mails from a user picker (single or multi), or plain strings; what is neither is an error."""
    if value is None:
        return []
    entries = value if isinstance(value, list) else [value]
    for entry in entries:
        if isinstance(entry, str):
            draft_list.extend(part for part in re.split(r"[,;\s]+", entry) if part)
        elif isinstance(entry, dict):
            email = entry.get("emailAddress")
            if isinstance(email, str) and email.strip():
                draft_list.append(email.strip())
            else:
                missing.append(
                    MissingEmail(
                        role,
                        str(entry.get("accountId") or entry.get("name") or ""),
                        str(entry.get("displayName") or ""),
                    )
                )
        else:
            return [FieldError(role, "must hold Jira users or e-mail addresses")]
    return []


def parse(payload: Any, fields: JiraFields, *, preflight: bool = False) -> Approval | Ignored:
    """The approval a body carries, or why it is none.

    ``preflight``: map the issue as if it were approved, whatever the event and the status (a check sent on
    "issue created" or on an edit, before anyone approved it); a body without an issue is still refused.
    """
    if not isinstance(payload, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    event = payload.get("webhookEvent")
    if event is not None and event != "jira:issue_updated" and not preflight:
        return Ignored(f"webhook event {str(event)[:64]!r} is not an issue update")
    issue = _issue_of(payload)
    if issue is None:
        if "displayName" in payload or "templateId" in payload:
            raise InvalidRequest(
                [FieldError("body", "this is a Syskit Point provisioning body: post it to /api/provision")]
            )
        raise InvalidRequest([FieldError("issue", "is required: send the admin webhook or Automation's issue data")])
    key = issue.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidRequest([FieldError("issue.key", "is required")])
    errors = check_ticket("jira", key)
    if errors:
        raise InvalidRequest([FieldError("issue.key", errors[0].message)])
    issue_fields = issue.get("fields")
    if not isinstance(issue_fields, dict):
        raise InvalidRequest([FieldError("issue.fields", "must be an object")])

    if not preflight:
        ignored = _not_approved(payload, issue, fields)
        if ignored is not None:
            return ignored
    return _map(issue, key, fields)


def _not_approved(payload: dict[str, Any], issue: dict[str, Any], fields: JiraFields) -> Ignored | None:
    """Why the body is no approval, or None when it is one."""
    approved = fields.approved_status
    # A post function runs before the issue is re-indexed: fields.status may still be the status being left.
    post_function = _post_function_move(payload, fields.post_function_match)
    moved_to = _status_change(payload)
    if post_function is not None:
        if not same_status(post_function, approved):
            what = "transition" if fields.post_function_match == "transition_name" else "move to status"
            return Ignored(f"the workflow post function reports {what} {post_function[:100]!r}, not {approved!r}")
    elif moved_to is not None:
        if not same_status(moved_to, approved):
            return Ignored("the issue did not move to " + approved)
    elif not same_status(_current_status(issue), approved):
        return Ignored("the issue is not in status " + approved)
    return None


def _map(issue: dict[str, Any], key: str, fields: JiraFields) -> Approval:
    """The draft the issue's fields make (the Jira field settings); users without a visible e-mail go to ``missing``."""
    issue_fields = issue["fields"]
    draft: dict[str, Any] = {"comment": f"Generated by JIRA Issue {key}", "metadata": {}}
    for role, field in (("displayName", fields.display_name), ("description", fields.description)):
        value = issue_fields.get(field)
        if value is not None:
            draft[role] = _option_text(value) if not isinstance(value, str) else value
    if fields.workspace_type:
        draft["workspaceType"] = _option_text(issue_fields.get(fields.workspace_type))
    if fields.template:
        draft["templateId"] = _option_text(issue_fields.get(fields.template))
    if fields.privacy:
        text = _option_text(issue_fields.get(fields.privacy))
        parsed = parse_bool(text) if text is not None else False
        draft["isPrivate"] = parsed if parsed is not None else text

    missing: list[MissingEmail] = []
    owners: list[str] = []
    members: list[str] = []
    owner_source = issue_fields.get(fields.owners) if fields.owners else issue_fields.get("reporter")
    errors = _people(owner_source, "owners", owners, missing)
    if fields.members:
        errors += _people(issue_fields.get(fields.members), "members", members, missing)
    draft["owners"] = owners
    draft["members"] = members
    approval = Approval(TicketRef("jira", key), draft, {"issueKey": key}, missing)
    if errors:
        approval.problems.append(InvalidRequest(errors))
    return approval


class JiraError(Exception):
    """Jira answered with an error or could not be reached (``detail``: Jira's own errorMessages, if any)."""

    def __init__(self, message: str, status: int | None = None, transient: bool = True, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.detail = detail


def _error_detail(response: requests.Response) -> str:
    """Jira's errorMessages/errors, shortened; never the request."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    messages = [str(m) for m in body.get("errorMessages") or [] if m]
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        messages += [f"{k}: {v}" for k, v in errors.items()]
    return "; ".join(messages)[:300]


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


# Jira permission keys and the names Jira shows for them.
PERMISSION_NAMES = {
    "BROWSE_PROJECTS": "Browse projects",
    "USER_PICKER": "Browse users and groups (global)",
    "ADD_COMMENTS": "Add comments",
    "SERVICEDESK_AGENT": "Jira Service Management agent (Service project agent)",
    "TRANSITION_ISSUES": "Transition issues",
}


class JiraClient:
    """Jira REST, with basic auth (account e-mail and API token)."""

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = (email, api_token)
        self._session = session or requests.Session()
        self._timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                auth=self._auth,
                timeout=self._timeout,
                headers={"Accept": "application/json"},
                **kwargs,
            )
        except requests.RequestException as exc:
            raise JiraError(f"Jira unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            transient = response.status_code in (408, 409, 425, 429) or response.status_code >= 500
            raise JiraError(
                f"Jira answered {response.status_code} to {method} {path.split('?')[0]}",
                response.status_code,
                transient,
                _error_detail(response),
            )
        return response

    # -- what doctor asks ---------------------------------------------------
    def myself(self) -> dict[str, Any]:
        """The account the API token belongs to."""
        user = self._call("GET", "/rest/api/3/myself").json()
        return user if isinstance(user, dict) else {}

    def my_permissions(self, project_key: str, keys: list[str]) -> dict[str, bool]:
        """Whether the account holds each permission in the project (global ones regardless of it)."""
        params = {"projectKey": project_key, "permissions": ",".join(keys)}
        listed = self._call("GET", "/rest/api/3/mypermissions", params=params).json()
        granted = listed.get("permissions", {}) if isinstance(listed, Mapping) else {}
        return {key: bool(isinstance(granted.get(key), Mapping) and granted[key].get("havePermission")) for key in keys}

    def workflow_transitions(self, project_key: str, max_pages: int = 20) -> dict[str, set[str]]:
        """Transition names of each active classic workflow the project uses (needs Administer Jira)."""
        found: dict[str, set[str]] = {}
        start = 0
        for _ in range(max_pages):
            params = {"expand": "transitions,projects", "isActive": "true", "startAt": start, "maxResults": 50}
            page = self._call("GET", "/rest/api/3/workflow/search", params=params).json()
            values = page.get("values", []) if isinstance(page, Mapping) else []
            for workflow in (w for w in values if isinstance(w, Mapping)):
                if project_key.upper() in {str(p.get("key", "")).upper() for p in _objects(workflow.get("projects"))}:
                    name = str((workflow.get("id") or {}).get("name") or "?")
                    found[name] = {str(t.get("name", "")) for t in _objects(workflow.get("transitions"))}
            start += len(values)
            if not values or page.get("isLast", True):
                break
        return found

    def email_of(self, account_id: str) -> str | None:
        """The user's e-mail address, when their profile visibility allows it."""
        try:
            user = self._call("GET", "/rest/api/3/user", params={"accountId": account_id}).json()
        except JiraError as exc:
            if exc.status == 404:
                return None
            raise
        email = user.get("emailAddress") if isinstance(user, dict) else None
        return email.strip() if isinstance(email, str) and email.strip() else None

    def comment(self, issue_key: str, text: str, internal: bool, marker: str = "") -> None:
        """Add the outcome to the issue. The marker goes into a comment property (plain comments) or,
        since Service Management's comment API takes no properties, into a last line of the note."""
        if internal:
            body = f"{text}\n\n{marker_line(marker)}" if marker else text
            path = f"/rest/servicedeskapi/request/{issue_key}/comment"
            self._call("POST", path, json={"body": body, "public": False})
            return
        sent: dict[str, Any] = {"body": text}
        if marker:
            sent["properties"] = [{"key": MARKER_PROPERTY, "value": {"marker": marker}}]
        self._call("POST", f"/rest/api/2/issue/{issue_key}/comment", json=sent)

    def has_comment(self, issue_key: str, marker: str, newest: int = 100) -> bool:
        """Whether one of the issue's newest comments carries the marker (property or note line)."""
        listed = self._call(
            "GET",
            f"/rest/api/2/issue/{issue_key}/comment",
            params={"expand": "properties", "orderBy": "-created", "maxResults": str(newest)},
        ).json()
        comments = listed.get("comments", []) if isinstance(listed, Mapping) else []
        for comment in comments if isinstance(comments, list) else []:
            if not isinstance(comment, Mapping):
                continue
            for prop in comment.get("properties") or []:
                value = prop.get("value") if isinstance(prop, Mapping) else None
                if prop.get("key") == MARKER_PROPERTY and isinstance(value, Mapping) and value.get("marker") == marker:
                    return True
            body = comment.get("body")
            if isinstance(body, str) and marker in body:
                return True
        return False

    def transition(self, issue_key: str, name: str, marker: str = "") -> bool:
        """Apply the transition with this name, if the workflow offers it now. The marker is set as an
        issue property in the same request, so the transition and its marker happen together."""
        listed = self._call("GET", f"/rest/api/3/issue/{issue_key}/transitions").json()
        for transition in listed.get("transitions", []) if isinstance(listed, Mapping) else []:
            if str(transition.get("name", "")).casefold() == name.casefold():
                sent: dict[str, Any] = {"transition": {"id": str(transition["id"])}}
                if marker:
                    sent["properties"] = [{"key": f"{MARKER_PROPERTY}.{marker}", "value": {"transition": name}}]
                self._call("POST", f"/rest/api/3/issue/{issue_key}/transitions", json=sent)
                return True
        return False

    def has_transitioned(self, issue_key: str, marker: str) -> bool:
        """Whether the transition carrying this marker was applied (its issue property exists)."""
        try:
            self._call("GET", f"/rest/api/3/issue/{issue_key}/properties/{MARKER_PROPERTY}.{marker}")
        except JiraError as exc:
            if exc.status == 404:
                return False
            raise
        return True
