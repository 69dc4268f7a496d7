"""Jira and ServiceNow stand-ins that record what the bridge writes back.

They also answer the lookups the bridge makes before writing a step again,
the way the real APIs do: Jira's comments with ``expand=properties`` (Service
Management internal notes among them, carrying ``sd.public.comment``) and its
issue properties; ServiceNow's journal through the Table API on
``sys_journal_field``.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.standin import Call, Reply, StandIn, bearer


def _basic(call: Call) -> tuple[str, str] | None:
    value = call.headers.get("Authorization") or call.headers.get("authorization") or ""
    if not value.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
    return user, password


@dataclass
class JiraUser:
    account_id: str
    display_name: str
    email: str = ""  # empty: hidden by the user's profile visibility


# The permissions /rest/api/3/mypermissions knows, as Jira Cloud names them (a subset).
JIRA_PERMISSIONS = {
    "BROWSE_PROJECTS": ("10", "Browse Projects", "PROJECT", "Ability to browse projects and the issues within them."),
    "ADD_COMMENTS": ("15", "Add Comments", "PROJECT", "Ability to comment on issues."),
    "TRANSITION_ISSUES": ("46", "Transition Issues", "PROJECT", "Ability to transition issues."),
    "SERVICEDESK_AGENT": ("10600", "Service Desk Agent", "PROJECT", "Ability to act as an agent."),
    "USER_PICKER": ("27", "Browse users and groups", "GLOBAL", "Ability to select a user or group."),
    "ADMINISTER": ("0", "Administer Jira", "GLOBAL", "Ability to perform most administration functions."),
}


class JiraStandIn(StandIn):
    """Jira Cloud's REST API as far as the bridge and doctor use it, with Jira's status codes and bodies."""

    name = "jira"

    def __init__(self, email: str, api_token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.api_token = api_token
        self.account_id = "5b10ac8d82e05b22cc7d4ef5"
        self.users: dict[str, JiraUser] = {}
        self.comments: list[tuple[str, dict[str, Any], str]] = []  # (issue key, body, kind)
        self.applied: list[tuple[str, str]] = []  # (issue key, transition id)
        self.transitioned: list[tuple[str, str, list[dict[str, Any]]]] = []  # (issue, id, properties set with it)
        self.stored: list[dict[str, Any]] = []  # every comment as Jira keeps it (issue, id, body, properties)
        self.issue_properties: dict[tuple[str, str], Any] = {}  # (issue key, property key) -> value
        self._ids = itertools.count(10001)
        self.reset_access()

    def reset_access(self) -> None:
        """The bridge account's projects, permissions and workflow: an agent in HR, not an administrator."""
        self.transitions = [  # out of the status an approved request is in
            {"id": "31", "name": "Done"},
            {"id": "41", "name": "Provisioning failed"},
            {"id": "51", "name": "Reopen"},
        ]
        self.projects = {"HR": "10000"}
        self.granted = {"BROWSE_PROJECTS", "ADD_COMMENTS", "TRANSITION_ISSUES", "SERVICEDESK_AGENT", "USER_PICKER"}
        self.service_management = True  # a Jira Service Management site: SERVICEDESK_AGENT is a known key
        self.workflow_name = "HR: Service Request Fulfilment workflow for Jira Service Management"

    def _permissions(self, call: Call) -> Reply:
        keys = [k for k in (call.query.get("permissions") or [""])[0].split(",") if k]
        known = {k: v for k, v in JIRA_PERMISSIONS.items() if self.service_management or k != "SERVICEDESK_AGENT"}
        if not keys or any(k not in known for k in keys):
            return Reply(400, {"errorMessages": ["Invalid permission key."], "errors": {}})
        project = (call.query.get("projectKey") or [""])[0]
        if project and (project.upper() not in self.projects or "BROWSE_PROJECTS" not in self.granted):
            return Reply(404, {"errorMessages": [f"No project could be found with key '{project}'."], "errors": {}})
        shown = {}
        for key in keys:
            ident, name, kind, description = known[key]
            shown[key] = {"id": ident, "key": key, "name": name, "type": kind, "description": description,
                          "havePermission": key in self.granted}
        return Reply(200, {"permissions": shown})

    def _workflows(self, call: Call) -> Reply:
        if "ADMINISTER" not in self.granted:
            return Reply(403, {"errorMessages": ["Only Jira administrators can access workflows."], "errors": {}})
        transitions = [{"id": "11", "name": "Approve", "description": "", "from": ["10001"], "to": "10002",
                        "type": "directed"}]
        transitions += [{"id": t["id"], "name": t["name"], "description": "", "from": ["10002"], "to": "10003",
                         "type": "directed"} for t in self.transitions]
        workflow = {
            "id": {"name": self.workflow_name, "entityId": "0b7e9d2c-1f3a-4c5e-9a8b-7d6c5e4f3a2b"},
            "description": "", "transitions": transitions,
            "projects": [{"self": f"{self.url}/rest/api/3/project/{pid}", "id": pid, "key": key,
                          "name": key, "projectTypeKey": "service_desk"} for key, pid in self.projects.items()],
        }
        start = int((call.query.get("startAt") or ["0"])[0])
        values = [workflow][start:]
        return Reply(200, {"maxResults": 50, "startAt": start, "total": 1, "isLast": True, "values": values})

    def clear_records(self) -> None:
        self.comments.clear()
        self.applied.clear()
        self.transitioned.clear()
        self.users.clear()
        self.stored.clear()
        self.issue_properties.clear()

    def _store(self, issue: str, body: str, properties: list[dict[str, Any]]) -> str:
        comment_id = str(next(self._ids))
        created = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.stored.append({"issue": issue, "id": comment_id, "body": body, "created": created,
                            "properties": list(properties)})
        return comment_id

    def add_user(self, account_id: str, display_name: str, email: str = "") -> JiraUser:
        user = JiraUser(account_id, display_name, email)
        self.users[account_id] = user
        return user

    def handle(self, call: Call) -> Reply:
        if _basic(call) != (self.email, self.api_token):
            return Reply(401, {"errorMessages": ["Client must be authenticated to access this resource."]})
        parts = call.path.strip("/").split("/")
        if call.method == "GET" and call.path == "/rest/api/3/myself":
            return Reply(200, {"self": f"{self.url}/rest/api/3/user?accountId={self.account_id}",
                               "accountId": self.account_id, "accountType": "atlassian", "emailAddress": self.email,
                               "displayName": "Point Desk Bridge", "active": True, "timeZone": "Europe/Zagreb"})
        if call.method == "GET" and call.path == "/rest/api/3/mypermissions":
            return self._permissions(call)
        if call.method == "GET" and call.path == "/rest/api/3/workflow/search":
            return self._workflows(call)
        if call.method == "GET" and call.path == "/rest/api/3/user":
            user = self.users.get((call.query.get("accountId") or [""])[0])
            if user is None:
                return Reply(404, {"errorMessages": ["The user does not exist."]})
            shown = {"accountId": user.account_id, "displayName": user.display_name, "active": True}
            if user.email:
                shown["emailAddress"] = user.email
            return Reply(200, shown)
        if parts[:4] == ["rest", "api", "2", "issue"] and len(parts) == 6 and parts[-1] == "comment":
            if call.method == "GET":
                return self._list_comments(parts[4], call)
            sent = json.loads(call.body)
            self.comments.append((parts[4], sent, "comment"))
            comment_id = self._store(parts[4], sent.get("body", ""), sent.get("properties") or [])
            return Reply(201, {"id": comment_id, "body": sent.get("body", "")})
        if call.method == "POST" and parts[:3] == ["rest", "servicedeskapi", "request"] and parts[-1] == "comment":
            sent = json.loads(call.body)
            self.comments.append((parts[3], sent, "internal-note"))
            visibility = {"key": "sd.public.comment", "value": {"internal": not sent.get("public", True)}}
            comment_id = self._store(parts[3], sent.get("body", ""), [visibility])
            return Reply(201, {"id": int(comment_id), "body": sent.get("body", ""), "public": sent.get("public")})
        if parts[:4] == ["rest", "api", "3", "issue"] and parts[-1] == "transitions":
            if call.method == "GET":
                return Reply(200, {"transitions": self.transitions})
            sent = json.loads(call.body)
            wanted = sent.get("transition", {}).get("id")
            if wanted not in {t["id"] for t in self.transitions}:
                return Reply(400, {"errorMessages": ["Transition id is not valid."]})
            self.applied.append((parts[4], wanted))
            self.transitioned.append((parts[4], wanted, list(sent.get("properties") or [])))
            for prop in sent.get("properties") or []:  # set together with the transition
                self.issue_properties[(parts[4], prop["key"])] = prop.get("value")
            return Reply(204)
        if call.method == "GET" and parts[:4] == ["rest", "api", "3", "issue"] and len(parts) == 7 \
                and parts[5] == "properties":
            value = self.issue_properties.get((parts[4], parts[6]))
            if value is None:
                return Reply(404, {"errorMessages": [f"The property with key '{parts[6]}' does not exist."]})
            return Reply(200, {"key": parts[6], "value": value})
        return Reply(404, {"errorMessages": [f"No route {call.method} {call.path}"]})

    def _list_comments(self, issue: str, call: Call) -> Reply:
        """GET /rest/api/2/issue/{key}/comment: paged, ``orderBy=-created`` newest first, properties on expand."""
        query = {k: v[0] for k, v in call.query.items()}
        found = [c for c in self.stored if c["issue"] == issue]
        if query.get("orderBy") == "-created":
            found.reverse()
        start, size = int(query.get("startAt", 0)), int(query.get("maxResults", 50))
        expand = "properties" in query.get("expand", "").split(",")
        shown = []
        for comment in found[start:start + size]:
            item = {"id": comment["id"], "body": comment["body"], "created": comment["created"],
                    "author": {"emailAddress": self.email}}
            if expand:
                item["properties"] = comment["properties"]
            shown.append(item)
        return Reply(200, {"startAt": start, "maxResults": size, "total": len(found), "comments": shown})


class ServiceNowStandIn(StandIn):
    name = "servicenow"

    def __init__(self, username: str = "", password: str = "", token: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username, self.password, self.token = username, password, token
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.journal: list[dict[str, str]] = []  # sys_journal_field: one row per work note or comment
        self._ids = itertools.count(1)
        self.reset_access()

    def reset_access(self) -> None:
        """The integration user's access: read and write sc_req_item; one item exists."""
        self.can_read = True  # False: an ACL denies the table (403)
        self.can_write = True
        self.rows_hidden = False  # True: the read passes but row ACLs filter every record out
        self.items = [{"sys_id": "8f1c2b7e4f3a1210a1b2c3d4e5f60718", "number": "RITM0010452"}]

    def clear_records(self) -> None:
        self.patches.clear()
        self.journal.clear()

    def handle(self, call: Call) -> Reply:
        authorised = (self.token and bearer(call) == self.token) or (
            self.username and _basic(call) == (self.username, self.password)
        )
        if not authorised:
            return Reply(401, {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth "
                                         "information"}, "status": "failure"})
        parts = call.path.strip("/").split("/")
        table = parts[:4] == ["api", "now", "table", "sc_req_item"]
        if call.method == "GET" and table and len(parts) == 4:
            if not self.can_read:
                return Reply(403, {"error": {"message": "User Not Authorized",
                                             "detail": "Failed API level ACL Validation"}, "status": "failure"})
            limit = int((call.query.get("sysparm_limit") or ["10000"])[0])
            fields = [f for f in (call.query.get("sysparm_fields") or [""])[0].split(",") if f]
            rows = [] if self.rows_hidden else self.items[:limit]
            return Reply(200, {"result": [{k: v for k, v in row.items() if not fields or k in fields} for row in rows]})
        if call.method == "PATCH" and table and len(parts) == 5:
            if not self.can_write:
                return Reply(403, {"error": {"message": "Operation Failed",
                                             "detail": "ACL Exception Update Failed due to security constraints"},
                                   "status": "failure"})
            fields = json.loads(call.body)
            self.patches.append((parts[4], fields))
            for element in ("work_notes", "comments"):
                if fields.get(element):
                    self.journal.append({
                        "sys_id": f"{next(self._ids):032x}", "element_id": parts[4], "name": "sc_req_item",
                        "element": element, "value": fields[element],
                        "sys_created_on": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    })
            return Reply(200, {"result": {"sys_id": parts[4], **fields}})
        if call.method == "GET" and call.path == "/api/now/table/sys_journal_field":
            return self._query_journal(call)
        return Reply(404, {"error": {"message": "No route"}})

    def _query_journal(self, call: Call) -> Reply:
        """The Table API's encoded query on the journal: ``field=value`` and ``fieldLIKEtext``, joined by ``^``."""
        query = {k: v[0] for k, v in call.query.items()}
        rows = list(self.journal)
        for condition in filter(None, query.get("sysparm_query", "").split("^")):
            name, like, text = condition.partition("LIKE")
            if like and "=" not in name:
                rows = [r for r in rows if text in r.get(name, "")]
                continue
            name, equals, value = condition.partition("=")
            if not equals:
                return Reply(400, {"error": {"message": f"Invalid query condition {condition!r}"}})
            rows = [r for r in rows if r.get(name) == value]
        rows = rows[: int(query.get("sysparm_limit", 10000))]
        wanted = [f for f in query.get("sysparm_fields", "").split(",") if f]
        if wanted:
            rows = [{f: r.get(f, "") for f in wanted} for r in rows]
        return Reply(200, {"result": rows})


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class CallbackReceiver(StandIn):
    """Where an /api/provision caller's ticket.callbackUrl points.

    Like a careful receiver it acts once per ``webhook-id``: ``received`` holds every delivery,
    ``accepted`` the first of each id.
    """

    name = "callback"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[Received] = []
        self.accepted: dict[str, Received] = {}

    def clear_records(self) -> None:
        self.received.clear()
        self.accepted.clear()

    def handle(self, call: Call) -> Reply:
        received = Received(call.headers, json.loads(call.body))
        self.received.append(received)
        message_id = next((v for k, v in call.headers.items() if k.lower() == "webhook-id"), "")
        self.accepted.setdefault(message_id or f"unnamed-{len(self.received)}", received)
        return Reply(204)
