"""``python -m deskbridge demo`` (or ``python -m devtools.demo``): a Jira and a ServiceNow approval, end to end.

Nothing leaves this machine. The demo starts the local stand-ins from
``devtools`` (Entra ID, Key Vault, the Syskit Point simulator, Jira,
ServiceNow, all over HTTPS on 127.0.0.1) and Azurite, points the bridge at
them, and then plays both desks:

1. the desk's approval callback goes through the function app's registered
   HTTP function (signed, as the recommended setup does);
2. the bridge calls the Syskit Point simulator, which accepts the request;
3. the simulator sends its signed ProvisioningStarted and
   ProvisioningCompleted webhooks, handed in process to ``point/events``;
4. the desk-updates queue (in Azurite) is drained into the ``desk_update``
   queue function, which writes the Jira note and the ServiceNow work note.

Every step is printed as it happens (``--json``: all steps at the end).
It needs what ``scripts/bootstrap`` installs (.venv and node_modules), and
neither Azure nor Azure Functions Core Tools.

It lives in devtools/, outside the deployment (it imports the function app
and the stand-ins); the CLI offers the ``demo`` command where this module is
present (deskbridge.cli.WHEN_PRESENT) and imports it only when it is chosen.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deskbridge import cli
from deskbridge.cli import Failure, command

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from deskbridge.runtime import Runtime

EVENTS_URL = "http://localhost:7071/api/point/events"  # where func start would take them; the demo has no listener
DEMO_ISSUE_KEY = "HR-42"
DEMO_RITM = "RITM0010452"
DEMO_RITM_SYS_ID = "8f1c2b7e4f3a1210a1b2c3d4e5f60718"
HIDDEN_OWNER = "557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10"

# How the demo's Jira project is set up: which custom fields hold what.
DEMO_DESK_SETTINGS = {  # with devtools.stack.SAMPLE_JIRA_FIELDS, the sample project's custom fields
    "JIRA_TRANSITION_COMPLETED": "Done",
    "SERVICENOW_STATE_COMPLETED": "3",
}
DEMO_JIRA_HOOK_SECRET = "jira-webhook-secret"
DEMO_SERVICENOW_HOOK_SECRET = "servicenow-signing-secret"


@dataclass
class Step:
    """One thing a person watching the demo wants to see."""

    at: float  # seconds since the first approval was sent
    ticket: str  # source/id
    step: str  # callback accepted, Syskit Point called, webhook received, ticket updated, ...
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class Steps:
    """Collects steps from the main thread and the simulator's event threads; prints them live."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.items: list[Step] = []
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def restart_clock(self) -> None:
        self._started = time.monotonic()

    def add(self, ticket: str, step: str, detail: str, **data: Any) -> None:
        with self._lock:
            item = Step(round(time.monotonic() - self._started, 2), ticket, step, detail, data)
            self.items.append(item)
            if self.live:
                print(f"  {item.at:5.2f}s  {ticket:<24} {step:<21} {detail}", flush=True)

    def say(self, text: str = "") -> None:
        if self.live:
            print(text, flush=True)


# -- the desks' payloads ----------------------------------------------------------------


def jira_admin_webhook() -> dict[str, Any]:
    """What Jira's admin webhook posts when HR-42 moves to Approved (fields as the demo maps them)."""
    return {
        "timestamp": int(time.time() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mira Approver", "active": True},
        "issue": {
            "id": "10042",
            "key": DEMO_ISSUE_KEY,
            "self": "https://contoso.atlassian.net/rest/api/2/issue/10042",
            "fields": {
                "summary": "New team for Project Apollo",
                "description": "Workspace for the Apollo launch crew.",
                "status": {"id": "10102", "name": "Approved"},
                "reporter": {"accountId": "557058:f58131cb", "displayName": "Ann Reporter", "active": True},
                "customfield_10054": "Project Apollo",
                "customfield_10060": [
                    {"accountId": "557058:0867a421", "displayName": "Olga Owner",
                     "emailAddress": "olga.owner@contoso.com", "active": True},
                    # Profile visibility hides this e-mail: the bridge asks Jira's API for it.
                    {"accountId": HIDDEN_OWNER, "displayName": "Hidden Harry", "emailAddress": "", "active": True},
                ],
                "customfield_10061": [
                    {"accountId": "5d53f3cbc6b9320d9ea5bdc2", "displayName": "Mark Member",
                     "emailAddress": "mark.member@contoso.com", "active": True},
                ],
                "customfield_10070": {"value": "Microsoft Teams", "id": "10100"},
                "customfield_10071": {"value": "Private", "id": "10110"},
            },
        },
        "changelog": {
            "id": "10305",
            "items": [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10101",
                       "fromString": "Waiting for approval", "to": "10102", "toString": "Approved"}],
        },
    }


def servicenow_body() -> dict[str, Any]:
    """What the bridge's ServiceNow Run Script (docs/servicenow-run-script.js) sends."""
    return {
        "number": DEMO_RITM,
        "sys_id": DEMO_RITM_SYS_ID,
        "variables": {
            "site_name": "Sales EMEA Q3",
            "site_description": "Quarterly sales workspace",
            "workspace_type": "sites",
            "is_private": "false",
            "template_id": "8",
        },
        "owners": ["olga.owner@contoso.com"],
        "members": ["mark.member@contoso.com"],
        "unresolved": [],
    }


# -- the function app, called in process ------------------------------------------------

_FUNCTIONS: dict[str, Any] = {}


def functions() -> dict[str, Any]:
    """The functions registered in function_app (``get_functions`` may run once per app)."""
    if not _FUNCTIONS:
        try:
            import function_app
        except ModuleNotFoundError as exc:
            raise Failure(f"cannot import the function app ({exc.name}): run the demo from the project folder, "
                          "after scripts/bootstrap") from None
        _FUNCTIONS.update({f.get_function_name(): f for f in function_app.app.get_functions()})
    return _FUNCTIONS


def call_http(name: str, body: bytes, headers: dict[str, str], method: str = "POST",
              route_params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    import azure.functions as func

    request = func.HttpRequest(method, f"http://localhost:7071/api/{name}", headers=headers, params={},
                               route_params=route_params or {}, body=body)
    response = functions()[name].get_user_function()(request)
    return response.status_code, json.loads(response.get_body() or b"{}")


def call_queue(name: str, message: Any) -> None:
    from azure.functions.queue import QueueMessage

    incoming = QueueMessage(id=message.id, body=message.content.encode("utf-8"),
                            dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
    functions()[name].get_user_function()(incoming)


# -- the demo ---------------------------------------------------------------------------


@contextmanager
def local_stack(workdir: Path) -> Iterator[Any]:
    try:
        from devtools.azurite import AzuriteError, azurite_command
        from devtools.stack import LocalStack
    except ModuleNotFoundError as exc:
        raise Failure(f"the local stand-ins need {exc.name}, which is not installed: run scripts/bootstrap "
                      "(it installs requirements-dev.txt into .venv)") from None
    try:
        azurite_command()
    except AzuriteError:
        raise Failure("Azurite (the Azure Storage emulator) is not installed in node_modules: run scripts/bootstrap "
                      "(it needs Node.js 20 and npm), then run the demo again") from None
    stack = LocalStack(workdir)
    try:
        stack.start()
    except AzuriteError as exc:
        stack.stop()
        raise Failure(f"Azurite did not start: {exc}") from None
    try:
        yield stack
    finally:
        stack.stop()


@contextmanager
def process_environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def demo_settings(stack: Any) -> dict[str, str]:
    from devtools.stack import SAMPLE_JIRA_FIELDS

    return dict(os.environ) | stack.settings | SAMPLE_JIRA_FIELDS | DEMO_DESK_SETTINGS | {
        "JIRA_WEBHOOK_SECRET_NAME": DEMO_JIRA_HOOK_SECRET,
        "SERVICENOW_SIGNING_SECRET_NAME": DEMO_SERVICENOW_HOOK_SECRET,
        "BRIDGE_RETRY_SCHEDULE": "1",
    }


def run(steps: Steps, timeout: float) -> dict[str, Any]:
    from deskbridge import runtime as runtimes

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deskbridge-demo-") as workdir, local_stack(Path(workdir)) as stack:
        steps.say(f"Started in {time.monotonic() - started:.1f} s on 127.0.0.1: Entra ID, Key Vault, the Syskit "
                  "Point simulator, Jira and ServiceNow stand-ins (HTTPS), and Azurite (in memory).")
        jira_secret = "jws-" + secrets.token_urlsafe(24)
        signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        stack.vault.set_secret(DEMO_JIRA_HOOK_SECRET, jira_secret)
        stack.vault.set_secret(DEMO_SERVICENOW_HOOK_SECRET, signing_secret)
        stack.jira.add_user(HIDDEN_OWNER, "Hidden Harry", "harry@contoso.com")
        with process_environment(stack.process_environment):
            runtime = runtimes.reset(demo_settings(stack))
            runtime.ensure_storage()  # what the infra templates do in Azure
            try:
                return _play(stack, runtime, steps, jira_secret, signing_secret, timeout)
            finally:
                stack.point.webhooks.clear()  # no late event into a runtime that is gone
                runtimes.reset({})


def _play(stack: Any, runtime: Runtime, steps: Steps, jira_secret: str, signing_secret: str,
          timeout: float) -> dict[str, Any]:
    from deskbridge.auth import sign_hub

    point = stack.point
    point.webhooks[EVENTS_URL] = ["*"]
    point.deliver = _deliver_in_process(steps)
    steps.say("The simulator hands its webhooks (every event type) straight to the bridge's point_events function "
              "in this process;\nnothing listens on a port (under func start they go to "
              f"{EVENTS_URL}).\n")
    steps.restart_clock()

    body = json.dumps(jira_admin_webhook()).encode("utf-8")
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign_hub(body, jira_secret),
               "X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}
    _approve(stack, steps, "jira", f"jira/{DEMO_ISSUE_KEY}", "Jira admin webhook, X-Hub-Signature checked",
             body, headers)

    body = json.dumps(servicenow_body()).encode("utf-8")
    _approve(stack, steps, "servicenow", f"servicenow/{DEMO_RITM}",
             "ServiceNow Run Script, Standard Webhooks signature checked", body,
             _standard_webhook_headers(body, signing_secret))

    tickets = [("jira", DEMO_ISSUE_KEY), ("servicenow", DEMO_RITM)]
    _drain_until_written(stack, runtime, steps, tickets, timeout)

    outcome = []
    for source, ticket in tickets:
        status, summary = call_http("request_status", b"", {}, method="GET",
                                    route_params={"source": source, "ticket": ticket})
        outcome.append({"ticket": f"{source}/{ticket}", "httpStatus": status, "status": summary.get("status"),
                        "url": (summary.get("workspace") or {}).get("url")})
    return {"requests": outcome}


def _approve(stack: Any, steps: Steps, route: str, label: str, how: str, body: bytes,
             headers: dict[str, str]) -> None:
    lookups_before = len(stack.jira.calls_to("GET", "/rest/api/3/user"))
    status, answer = call_http(route, body, headers)
    ticket = answer.get("ticket") or {}
    if ticket.get("source") and ticket.get("id"):
        label = f"{ticket['source']}/{ticket['id']}"  # the ticket as the bridge recorded it
    steps.add(label, "callback accepted", f"{status} {answer.get('status')} ({how})",
              http_status=status, status=answer.get("status"), errors=answer.get("errors"))
    if status >= 300:
        raise Failure(f"the bridge did not accept {label}: {status} {answer.get('status')} {answer.get('errors')}")
    looked_up = len(stack.jira.calls_to("GET", "/rest/api/3/user")) - lookups_before
    if looked_up:
        steps.add(label, "owner e-mail found", f"asked Jira's user API for {looked_up} hidden e-mail address(es)",
                  lookups=looked_up)
    request_id = answer.get("pointRequestId")
    sent = next((p for p in stack.point.provisioned if p.request_id == request_id), None)
    path = f"POST /v1.0/provision/{sent.workspace_type}" if sent else "POST /v1.0/provision"
    steps.add(label, "Syskit Point called", f"{path} -> request id {request_id}", request_id=request_id,
              path=path)


def _standard_webhook_headers(body: bytes, secret: str) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    message_id = f"msg_{uuid.uuid4().hex}"
    moment = datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body.decode("utf-8")),
    }


def _deliver_in_process(steps: Steps) -> Callable[[str, bytes, dict[str, str]], int]:
    """The simulator's webhook sender, handing each signed event to the point_events function."""

    def deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
        status, answer = call_http("point_events", body, headers)
        event = json.loads(body)
        ticket = answer.get("ticket") or {}
        label = f"{ticket.get('source')}/{ticket.get('id')}" if ticket else "(no request)"
        steps.add(label, "webhook received",
                  f"{event.get('type')}, signature checked -> {status} {answer.get('status')}",
                  event=event.get("type"), http_status=status, status=answer.get("status"))
        return status

    return deliver


def queue_client(runtime: Runtime, name: str) -> QueueClient:
    """A client of one of the bridge's queues, as the Functions host reads it (base64 text)."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    return QueueClient.from_connection_string(
        runtime.settings.storage_connection_string, name,
        message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())


def _drain_until_written(stack: Any, runtime: Runtime, steps: Steps, tickets: list[tuple[str, str]],
                         timeout: float) -> None:
    """Feed the retry and desk-update queues to their functions until each outcome is written back."""
    from deskbridge.model import Status

    s = runtime.settings
    queues = [(queue_client(runtime, s.retry_queue), "retry"), (queue_client(runtime, s.desk_queue), "desk_update")]
    seen = {"jira": 0, "transitions": 0, "servicenow": 0}
    deadline = time.monotonic() + timeout
    while True:
        for client, function in queues:
            for message in client.receive_messages(messages_per_page=32, visibility_timeout=30, max_messages=32):
                call_queue(function, message)
                client.delete_message(message)
                _report_desk_writes(stack, steps, seen)
        records = {(s, t): runtime.ledger.get(s, t) for s, t in tickets}
        finished = all(r is not None and r.status in (Status.COMPLETED, Status.FAILED_IN_POINT)
                       and any(u.startswith(f"{r.status}:") for u in r.desk_updates) for r in records.values())
        if finished:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{s}/{t} is {r.status if r else 'not recorded'}" for (s, t), r in records.items())
            raise Failure(f"the demo did not finish within {timeout:g} s: {waiting}")
        time.sleep(0.05)


def _report_desk_writes(stack: Any, steps: Steps, seen: dict[str, int]) -> None:
    for key, body, kind in stack.jira.comments[seen["jira"]:]:
        where = "internal note" if kind == "internal-note" else "comment"
        steps.add(f"jira/{key}", "ticket updated", f'Jira {where}: "{body.get("body")}"', kind=kind,
                  text=body.get("body"))
    seen["jira"] = len(stack.jira.comments)
    names = {t["id"]: t["name"] for t in stack.jira.transitions}
    for key, transition in stack.jira.applied[seen["transitions"]:]:
        steps.add(f"jira/{key}", "ticket updated", f"Jira issue moved to {names.get(transition, transition)}",
                  transition=names.get(transition, transition))
    seen["transitions"] = len(stack.jira.applied)
    for sys_id, fields in stack.servicenow.patches[seen["servicenow"]:]:
        label = f"servicenow/{DEMO_RITM}" if sys_id == DEMO_RITM_SYS_ID else f"servicenow/{sys_id}"
        state = f" (state {fields['state']})" if "state" in fields else ""
        steps.add(label, "ticket updated", f'ServiceNow work note{state}: "{fields.get("work_notes")}"',
                  work_notes=fields.get("work_notes"), state=fields.get("state"))
    seen["servicenow"] = len(stack.servicenow.patches)


# -- the command ------------------------------------------------------------------------


@command("demo", cli.WHEN_PRESENT["demo"][1], settings=False)
def _demo_setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds to wait for Syskit Point's events and the ticket updates (default 20)")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    steps = Steps(live=not args.json)
    steps.say("Point Desk Bridge demo: a Jira approval and a ServiceNow approval, end to end, on this machine.")
    began = time.monotonic()
    try:
        result = run(steps, args.timeout)
    except Failure as exc:
        raise Failure(*exc.problems, details={"steps": [asdict(s) for s in steps.items]}) from None
    elapsed = round(time.monotonic() - began, 1)
    if args.json:
        print(json.dumps({"ok": True, "seconds": elapsed, "steps": [asdict(s) for s in steps.items]} | result,
                         indent=2, default=str))
        return 0
    steps.say("")
    for request in result["requests"]:
        steps.say(f"GET /api/requests/{request['ticket']} -> {request['httpStatus']} {request['status']}: "
                  f"{request['url']}")
    steps.say(f"\nDone in {elapsed} s. Next: scripts/run-local (with Azure Functions Core Tools) and the "
              "requests in test.http;\nsee docs/jira.md and docs/servicenow.md to connect a real desk, "
              "and python -m deskbridge doctor to check a configuration.")
    return 0


if __name__ == "__main__":
    sys.exit(cli.main(["demo", *sys.argv[1:]]))
