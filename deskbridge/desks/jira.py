"""Jira Cloud / Jira Service Management.

Inbound: the admin webhook (``jira:issue_updated``), a workflow post
function's "Trigger a webhook" (a top-level ``transition`` object, no
``webhookEvent`` and no changelog) and Automation's "Issue data" bodies
(Jira format ``{"issue": {...}}`` and Automation format, the issue at the
top level). Only a transition to the approved status is an approval; a preflight
(``?validate=true``) maps any issue as if it were one.
No I/O here: looking up e-mails and writing back is deskbridge.desks.jira_client.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from deskbridge.desks import Approval, Ignored, MissingEmail, TicketRef
from deskbridge.model import FieldError, InvalidRequest, check_desk_id, check_ticket, parse_bool


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
    wrong_key = check_desk_id("jira", "issue.key", key)  # it goes into Jira's REST paths when written back
    if wrong_key:
        raise InvalidRequest(wrong_key)
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
