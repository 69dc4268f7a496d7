"""Syskit Point simulator: the documented API, with switches for faults.

- Bearer tokens issued by the Entra ID stand-in for the Syskit Point API app;
  ``Point.Provisioning`` for provisioning, ``Point.Admin`` for webhooks and options.
- ``POST /v1.0/provision/{teams|groups|sites|yammer}`` validated the way
  Syskit Point would (known template of that type, a name, an owner).
- ``GET /v1.0/provision/templates``, ``GET /v1.0/provision/requests/{id}``
  (Pending, then InProgress, then Completed or Failed).
- ``/v1.0/webhooks/endpoints`` (POST, GET, DELETE) and ``GET /v1.0/options``.
- ``send_events = False``: no event is sent at all (a Syskit Point whose
  webhook registration is gone, or a bridge granted ``Point.Provisioning``
  only); the status route still answers. ``clock`` is the time the status
  route reads (a test hands it the bridge's clock, so moving that clock moves
  the request on); ``status_answers`` replaces the answer for a request id.
- After a request is accepted, signed ProvisioningStarted and then
  ProvisioningCompleted (or ProvisioningFailed) events go to every registered
  endpoint, ``event_delay`` seconds apart.
- Faults from :class:`devtools.standin.StandIn`: ``fail_next`` (status,
  ``Retry-After``), ``hang_next`` (read timeout after processing),
  ``drop_next``, ``latency``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.entra import EntraStandIn
from devtools.standin import Call, Reply, StandIn, bearer

EVENT_TYPES = {
    "teams": "MicrosoftTeams",
    "groups": "M365Group",
    "sites": "SharePointSiteCollection",
    "yammer": "YammerCommunity",
}

DEFAULT_TEMPLATES = (
    {"id": 7, "name": "Project team", "workspaceType": "teams"},
    {"id": 8, "name": "Department site", "workspaceType": "sites"},
    {"id": 9, "name": "Microsoft 365 group", "workspaceType": "groups"},
    {"id": 10, "name": "Viva Engage community", "workspaceType": "yammer"},
)


@dataclass
class Provisioned:
    request_id: str
    workspace_type: str
    body: dict[str, Any]
    received_at: float
    fails: bool = False
    events_sent: list[str] = field(default_factory=list)

    def status(self, now: float, step: float) -> str:
        age = now - self.received_at
        if age < step:
            return "Pending"
        if age < 2 * step:
            return "InProgress"
        return "Failed" if self.fails else "Completed"


Deliver = Callable[[str, bytes, dict[str, str]], int]


def http_deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
    import requests

    return requests.post(url, data=body, headers=headers, timeout=10).status_code


class PointSimulator(StandIn):
    name = "syskit-point"

    def __init__(self, entra: EntraStandIn, api_app_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entra = entra
        self.api_app_id = api_app_id
        entra.resources.add(api_app_id)
        self.templates: list[dict[str, Any]] = [dict(t) for t in DEFAULT_TEMPLATES]
        self.provisioned: list[Provisioned] = []
        self.webhooks: dict[str, list[str]] = {}
        self.signature_key = secrets.token_urlsafe(32)
        self.event_delay = 0.5  # seconds between accepted, started and completed
        self.fail_names: set[str] = set()  # display names whose provisioning fails
        self.deliver: Deliver = http_deliver
        self.deliveries: list[tuple[str, str, int]] = []  # (url, event type, answer status)
        self.send_events = True
        self.clock: Callable[[], float] = time.time  # what "now" is for the status route and new requests
        self.status_answers: dict[str, Any] = {}  # request id -> the body the status route answers instead
        self._events: list[threading.Timer] = []

    # -- what tests look at -------------------------------------------------
    def provision_calls(self) -> list[Call]:
        return self.calls_to("POST", "/v1.0/provision/")

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every event scheduled so far was sent (or skipped): after it, nothing more arrives."""
        for timer in list(self._events):
            timer.join(timeout)
            if timer.is_alive():
                raise TimeoutError(f"an event was still being sent after {timeout} s")

    def reset_behaviour(self) -> None:
        """Default templates, event delay and delivery (what tests and the demo may have changed)."""
        self.templates = [dict(t) for t in DEFAULT_TEMPLATES]
        self.event_delay = 0.5
        self.deliver = http_deliver
        self.send_events = True
        self.clock = time.time
        self.status_answers = {}

    def stop(self) -> None:
        for timer in self._events:
            timer.cancel()
        super().stop()

    # -- HTTP ---------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        parts = call.path.strip("/").split("/")
        if parts[:1] != ["v1.0"]:
            return Reply(404, {"message": "Not found"})
        admin = parts[1:2] in (["webhooks"], ["options"])
        denied = self._authorize(call, "Point.Admin" if admin else "Point.Provisioning")
        if denied:
            return denied
        route = parts[1:]
        if route[:1] == ["provision"]:
            if call.method == "POST" and len(route) == 2:
                return self._provision(route[1], call)
            if call.method == "GET" and route[1:] == ["templates"]:
                return Reply(200, self.templates)
            if call.method == "GET" and len(route) == 3 and route[1] == "requests":
                return self._request_status(route[2])
        if route == ["webhooks", "endpoints"]:
            return self._webhooks(call)
        if route == ["options"] and call.method == "GET":
            return Reply(200, {"webhooksSignatureAuthenticationKey": self.signature_key})
        return Reply(404, {"message": f"No route {call.method} {call.path}"})

    def _authorize(self, call: Call, role: str) -> Reply | None:
        info = self.entra.token_info(bearer(call))
        if info is None or info.resource != self.api_app_id:
            return Reply(401, {"message": "Unauthorized"}, {"WWW-Authenticate": "Bearer"})
        if role not in info.roles:
            return Reply(403, {"message": f"The application does not have the {role} permission."})
        return None

    def _provision(self, workspace_type: str, call: Call) -> Reply:
        if workspace_type not in EVENT_TYPES:
            return Reply(404, {"message": f"Unknown workspace type {workspace_type}"})
        try:
            body = json.loads(call.body)
        except ValueError:
            return Reply(400, {"message": "The request body is not valid JSON."})
        problems = []
        template = next((t for t in self.templates if t["id"] == body.get("templateId")), None)
        if template is None:
            problems.append(f"Template {body.get('templateId')} does not exist.")
        elif template["workspaceType"] != workspace_type:
            problems.append(f"Template {template['id']} is not a {workspace_type} template.")
        if not body.get("displayName"):
            problems.append("DisplayName is required.")
        if not body.get("owners"):
            problems.append("At least one owner is required.")
        if problems:
            return Reply(400, {"message": " ".join(problems)})
        request = Provisioned(
            str(uuid.uuid4()), workspace_type, body, self.clock(), fails=body.get("displayName") in self.fail_names
        )
        with self._lock:
            self.provisioned.append(request)
        self._schedule_events(request)
        return Reply(200, {"requestId": request.request_id, "status": "Pending"})

    def _request_status(self, request_id: str) -> Reply:
        if request_id in self.status_answers:  # also a request sent before this simulator started
            return Reply(200, self.status_answers[request_id])
        request = next((p for p in self.provisioned if p.request_id == request_id), None)
        if request is None:
            return Reply(404, {"message": "Request not found"})
        status = request.status(self.clock(), self.event_delay)
        answer = {
            "id": request.request_id,
            "status": status,
            "displayName": request.body.get("displayName"),
            "workspaceType": request.workspace_type,
        }
        if status == "Completed":
            answer["url"] = f"https://contoso.sharepoint.com/sites/{request.body.get('desiredUrl') or 'workspace'}"
        elif status == "Failed":
            answer["error"] = "The site URL is already taken."
        return Reply(200, answer)

    def _webhooks(self, call: Call) -> Reply:
        if call.method == "GET":
            return Reply(200, [{"endpoint": url, "types": types} for url, types in self.webhooks.items()])
        try:
            body = json.loads(call.body or b"{}")
        except ValueError:
            return Reply(400, {"message": "The request body is not valid JSON."})
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return Reply(400, {"message": "endpoint must be an absolute URL"})
        if call.method == "POST":
            self.webhooks[endpoint] = list(body.get("types") or ["*"])
            return Reply(200, {"endpoint": endpoint, "types": self.webhooks[endpoint]})
        if call.method == "DELETE":
            if self.webhooks.pop(endpoint, None) is None:
                return Reply(404, {"message": "No such endpoint"})
            return Reply(204)
        return Reply(405, {"message": "Method not allowed"})

    # -- events -------------------------------------------------------------
    def event(self, kind: str, request: Provisioned) -> dict[str, Any]:
        name = request.body.get("displayName", "")
        content: dict[str, Any] = {"name": name, "type": EVENT_TYPES[request.workspace_type]}
        if kind == "ProvisioningStarted":
            content.update(
                {
                    "requestedOn": datetime.fromtimestamp(request.received_at, UTC).isoformat(),
                    "requesterId": str(uuid.uuid4()),
                }
            )
        elif kind == "ProvisioningCompleted":
            slug = request.body.get("desiredUrl") or "workspace"
            content.update({"url": f"https://contoso.sharepoint.com/sites/{slug}", "microsoftId": str(uuid.uuid4())})
        else:
            # Syskit's documented example spells this key with a trailing space.
            content.update({"error": "The site URL is already taken.", "correlationId ": str(uuid.uuid4())})
        return {
            "type": kind,
            "content": content,
            "meta": {"timeStamp": datetime.now(UTC).isoformat(), "idempotencyKey": str(uuid.uuid4())},
        }

    def signed(self, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        from deskbridge.auth import sign_point_event

        body = json.dumps(event).encode("utf-8")
        return body, {
            "Content-Type": "application/json",
            "Signature": sign_point_event(body, self.signature_key),
            "Algorithm": "HMACSHA256",
        }

    def _schedule_events(self, request: Provisioned) -> None:
        if not self.webhooks or not self.send_events:
            return
        final = "ProvisioningFailed" if request.fails else "ProvisioningCompleted"
        for step, kind in enumerate(("ProvisioningStarted", final), start=1):
            timer = threading.Timer(self.event_delay * step, self.send_event, args=(kind, request))
            timer.daemon = True
            self._events.append(timer)
            timer.start()

    def send_event(self, kind: str, request: Provisioned) -> None:
        body, headers = self.signed(self.event(kind, request))
        for url, types in list(self.webhooks.items()):
            if "*" not in types and kind not in types:
                continue
            try:
                status = self.deliver(url, body, headers)
            except Exception:  # an unreachable endpoint: Syskit Point would log and move on
                status = 0
            request.events_sent.append(kind)
            self.deliveries.append((url, kind, status))
