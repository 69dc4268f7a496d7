"""Outbound to Jira: looking up e-mail addresses, and writing the outcome back (comments, transitions).

Basic auth with the account's e-mail and an API token; one ``requests.Session``
per worker, explicit timeouts. Every failure is a :class:`JiraError`
(deskbridge.errors) saying whether it is ``transient`` and what Jira answered.
Each write carries the bridge's marker for the step (deskbridge.desks), so a
retry after an unclear write can look before writing again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

import requests

from deskbridge.causes import diagnose
from deskbridge.desks import MARKER_PROPERTY, marker_line
from deskbridge.desks.jira import same_status
from deskbridge.errors import JiraError, transient_status

__all__ = ["PERMISSION_NAMES", "JiraClient", "JiraError"]


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


def _segment(value: str) -> str:
    """One REST path segment, percent-encoded whatever it holds: intake only lets issue keys of Jira's form
    through, and this keeps a key such as ``HR-1/../x`` or ``HR-1;x=1`` one segment should any other reach here.
    A segment of dots alone (``.``, ``..``) is a path step however it is encoded: refused, never sent."""
    if value.strip(".") == "":
        raise JiraError("an empty or dot-only path segment is not a Jira issue key: not sent", transient=False)
    return quote(value, safe="")


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
        projects: Collection[str] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._projects = frozenset(p.upper() for p in projects)  # JIRA_PROJECT_KEYS: empty, no limit
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
            cause = diagnose(exc, service="Jira", url=self.base_url, setting="JIRA_URL")
            reason = cause.brief if cause else type(exc).__name__
            raise JiraError(f"Jira unreachable: {reason}", transient=True, unreachable=cause) from None
        if response.status_code >= 400:
            status = response.status_code
            raise JiraError(
                f"Jira answered {status} to {method} {path.split('?')[0]}",
                transient=status == 409 or transient_status(status),  # 409: an edit conflict, try again
                http_status=status,
                detail=_error_detail(response),
            )
        return response

    def _writable(self, issue_key: str) -> str:
        """The issue's path segment, when the bridge may write to it (JIRA_PROJECT_KEYS); else a JiraError that
        trying again cannot mend. The write-back checks this before; here it holds for any caller."""
        if self._projects and issue_key.rpartition("-")[0].upper() not in self._projects:
            raise JiraError("the issue's project is not in JIRA_PROJECT_KEYS: not written", transient=False)
        return _segment(issue_key)

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
            if exc.http_status == 404:
                return None
            raise
        email = user.get("emailAddress") if isinstance(user, dict) else None
        return email.strip() if isinstance(email, str) and email.strip() else None

    def comment(self, issue_key: str, text: str, internal: bool, marker: str) -> None:
        """Add the outcome to the issue. The marker goes into a comment property (plain comments) or,
        since Service Management's comment API takes no properties, into a last line of the note."""
        issue = self._writable(issue_key)
        if internal:
            body = f"{text}\n\n{marker_line(marker)}"
            path = f"/rest/servicedeskapi/request/{issue}/comment"
            self._call("POST", path, json={"body": body, "public": False})
            return
        sent = {"body": text, "properties": [{"key": MARKER_PROPERTY, "value": {"marker": marker}}]}
        self._call("POST", f"/rest/api/2/issue/{issue}/comment", json=sent)

    def has_comment(self, issue_key: str, marker: str, newest: int = 100) -> bool:
        """Whether one of the issue's newest comments carries the marker (property or note line)."""
        listed = self._call(
            "GET",
            f"/rest/api/2/issue/{_segment(issue_key)}/comment",
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

    def transition(self, issue_key: str, name: str, marker: str) -> bool:
        """Apply the transition with this name, if the workflow offers it now. The marker is set as an
        issue property in the same request, so the transition and its marker happen together."""
        issue = self._writable(issue_key)
        listed = self._call("GET", f"/rest/api/3/issue/{issue}/transitions").json()
        for transition in listed.get("transitions", []) if isinstance(listed, Mapping) else []:
            if same_status(str(transition.get("name", "")), name):  # as doctor checks it exists
                sent = {
                    "transition": {"id": str(transition["id"])},
                    "properties": [{"key": f"{MARKER_PROPERTY}.{marker}", "value": {"transition": name}}],
                }
                self._call("POST", f"/rest/api/3/issue/{issue}/transitions", json=sent)
                return True
        return False

    def has_transitioned(self, issue_key: str, marker: str) -> bool:
        """Whether the transition carrying this marker was applied (its issue property exists)."""
        try:
            path = f"/rest/api/3/issue/{_segment(issue_key)}/properties/{_segment(f'{MARKER_PROPERTY}.{marker}')}"
            self._call("GET", path)
        except JiraError as exc:
            if exc.http_status == 404:
                return False
            raise
        return True
