"""Jira and ServiceNow stand-ins that record what the bridge writes back."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
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


class JiraStandIn(StandIn):
    name = "jira"

    def __init__(self, email: str, api_token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email = email
        self.api_token = api_token
        self.users: dict[str, JiraUser] = {}
        self.transitions = [
            {"id": "31", "name": "Done"},
            {"id": "41", "name": "Provisioning failed"},
            {"id": "51", "name": "Reopen"},
        ]
        self.comments: list[tuple[str, dict[str, Any], str]] = []  # (issue key, body, kind)
        self.applied: list[tuple[str, str]] = []  # (issue key, transition id)

    def add_user(self, account_id: str, display_name: str, email: str = "") -> JiraUser:
        user = JiraUser(account_id, display_name, email)
        self.users[account_id] = user
        return user

    def handle(self, call: Call) -> Reply:
        if _basic(call) != (self.email, self.api_token):
            return Reply(401, {"errorMessages": ["Client must be authenticated to access this resource."]})
        parts = call.path.strip("/").split("/")
        if call.method == "GET" and call.path == "/rest/api/3/user":
            user = self.users.get((call.query.get("accountId") or [""])[0])
            if user is None:
                return Reply(404, {"errorMessages": ["The user does not exist."]})
            shown = {"accountId": user.account_id, "displayName": user.display_name, "active": True}
            if user.email:
                shown["emailAddress"] = user.email
            return Reply(200, shown)
        if call.method == "POST" and parts[:4] == ["rest", "api", "2", "issue"] and parts[-1] == "comment":
            self.comments.append((parts[4], json.loads(call.body), "comment"))
            return Reply(201, {"id": str(len(self.comments))})
        if call.method == "POST" and parts[:3] == ["rest", "servicedeskapi", "request"] and parts[-1] == "comment":
            self.comments.append((parts[3], json.loads(call.body), "internal-note"))
            return Reply(201, {"id": len(self.comments)})
        if parts[:4] == ["rest", "api", "3", "issue"] and parts[-1] == "transitions":
            if call.method == "GET":
                return Reply(200, {"transitions": self.transitions})
            wanted = json.loads(call.body).get("transition", {}).get("id")
            if wanted not in {t["id"] for t in self.transitions}:
                return Reply(400, {"errorMessages": ["Transition id is not valid."]})
            self.applied.append((parts[4], wanted))
            return Reply(204)
        return Reply(404, {"errorMessages": [f"No route {call.method} {call.path}"]})


class ServiceNowStandIn(StandIn):
    name = "servicenow"

    def __init__(self, username: str = "", password: str = "", token: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username, self.password, self.token = username, password, token
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def handle(self, call: Call) -> Reply:
        authorised = (self.token and bearer(call) == self.token) or (
            self.username and _basic(call) == (self.username, self.password)
        )
        if not authorised:
            return Reply(401, {"error": {"message": "User Not Authenticated"}})
        parts = call.path.strip("/").split("/")
        if call.method == "PATCH" and parts[:4] == ["api", "now", "table", "sc_req_item"] and len(parts) == 5:
            fields = json.loads(call.body)
            self.patches.append((parts[4], fields))
            return Reply(200, {"result": {"sys_id": parts[4], **fields}})
        return Reply(404, {"error": {"message": "No route"}})


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class CallbackReceiver(StandIn):
    """Where an /api/provision caller's ticket.callbackUrl points."""

    name = "callback"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[Received] = []

    def handle(self, call: Call) -> Reply:
        self.received.append(Received(call.headers, json.loads(call.body)))
        return Reply(204)
