"""Closing the loop: Syskit Point's webhooks in, ticket updates out.

An event is verified on its raw bytes, dropped if its idempotency key was
seen, correlated to the ledger by workspace name and type, and turns into a
desk update on the desk-updates queue. The queue handler writes each step
(comment, transition, PATCH, callback) once, and records it in the ledger
so a retry after a desk outage never writes it twice.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from deskbridge import jsonbody, telemetry
from deskbridge.auth import verify_point_signature
from deskbridge.desks import TicketRef
from deskbridge.ledger import LedgerRecord
from deskbridge.model import EVENT_WORKSPACE_TYPES, OPEN_STATUSES, FieldError, InvalidRequest, Status, name_key
from deskbridge.retries import QueueKey, next_delay, scheduled_age
from deskbridge.runtime import Runtime
from deskbridge.secrets import SecretUnavailable
from deskbridge.service import REFUSALS, Answer, answer, refusal
from deskbridge.settings import ConfigurationError

log = telemetry.logger("deskbridge.events")

EVENT_STATUS = {
    "ProvisioningStarted": Status.PROVISIONING,
    "ProvisioningCompleted": Status.COMPLETED,
    "ProvisioningFailed": Status.FAILED_IN_POINT,
}
# What each event may settle.
_SETTLES = {
    Status.PROVISIONING: OPEN_STATUSES - {Status.PROVISIONING},
    Status.COMPLETED: OPEN_STATUSES,
    Status.FAILED_IN_POINT: OPEN_STATUSES,
}


def handle_point_event(runtime: Runtime, body: bytes, headers: Mapping[str, str]) -> Answer:
    started = time.monotonic()
    try:
        result = _handle(runtime, body, headers)
    except REFUSALS as exc:
        result = refusal(exc, signature_field="Signature")
    ticket = result.body.get("ticket") or {}
    log.info(
        "point_event %s %s",
        result.body.get("event", "-"),
        result.body["status"],
        extra={
            "bridge_event": "point_event",
            "source": ticket.get("source", ""),
            "ticket": ticket.get("id", ""),
            "outcome": result.body["status"],
            "http_status": result.http_status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    return result


def _handle(runtime: Runtime, body: bytes, headers: Mapping[str, str]) -> Answer:
    s = runtime.settings
    if len(body) > s.max_body_bytes:
        raise InvalidRequest([FieldError("body", f"is larger than {s.max_body_bytes} bytes")], 413)
    names = s.point_webhook_key_secret_names
    if not names:  # the feature is off without its key: never accept an unsigned event
        raise ConfigurationError("POINT_WEBHOOK_KEY_SECRET_NAME", "is not set: Syskit Point events cannot be verified")
    verify_point_signature(body, headers, runtime.secrets.values(names))
    jsonbody.check_content_type(headers)
    event = jsonbody.parse(body)
    if not isinstance(event, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    event_type = event.get("type")
    content = event.get("content")
    meta = event.get("meta") if isinstance(event.get("meta"), dict) else {}
    if event_type not in EVENT_STATUS:
        return answer(Status.IGNORED, 200, reason=f"event type {str(event_type)[:60]!r} is not handled")
    if not isinstance(content, dict) or not isinstance(content.get("name"), str) or not content["name"].strip():
        raise InvalidRequest([FieldError("content.name", "is required")])
    workspace_type = EVENT_WORKSPACE_TYPES.get(str(content.get("type")))
    if workspace_type is None:
        raise InvalidRequest([FieldError("content.type", "must be one of " + ", ".join(EVENT_WORKSPACE_TYPES))])
    key = meta.get("idempotencyKey")
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise InvalidRequest([FieldError("meta.idempotencyKey", "is required")])

    if not runtime.deliveries.first_time("point", key):
        return answer("duplicate", 200, event=event_type)
    try:
        return _settle(runtime, event_type, content, workspace_type)
    except Exception:
        runtime.deliveries.forget("point", key)  # let Syskit Point's retry through
        raise


def _settle(runtime: Runtime, event_type: str, content: dict[str, Any], workspace_type: str) -> Answer:
    new_status = EVENT_STATUS[event_type]
    ledger = runtime.ledger
    candidates = ledger.open_by_name(name_key(content["name"]), workspace_type)
    candidates = [r for r in candidates if r.status in _SETTLES[new_status]]
    if not candidates:
        log.warning(
            "Syskit Point event %s for %r matches no open request (provisioned outside the bridge?)",
            event_type,
            content["name"][:100],
            extra={"bridge_event": "point_event", "outcome": "unmatched"},
        )
        return answer("unmatched", 202, event=event_type)
    if len(candidates) > 1:
        log.warning(
            "Syskit Point event %s for %r matches %d open requests; settling the oldest, %s/%s",
            event_type,
            content["name"][:100],
            len(candidates),
            candidates[0].source,
            candidates[0].ticket,
        )

    for target in candidates:
        record = _settle_one(runtime, target, new_status, content)
        if record is None:
            continue  # settled by another event meanwhile: try the next open request
        queue_desk_update(runtime, record, new_status)
        return answer(
            record.status,
            200,
            TicketRef(record.source, record.ticket),
            event=event_type,
            pointRequestId=record.point_request_id or None,
        )
    return answer("unmatched", 202, event=event_type)


def _settle_one(
    runtime: Runtime, target: LedgerRecord, new_status: Status, content: dict[str, Any]
) -> LedgerRecord | None:
    """Move one request to the event's status; None when it is no longer open for it."""
    settled = False

    def settle(record: LedgerRecord) -> LedgerRecord | None:
        nonlocal settled
        settled = False  # change() may call this again after a race
        if record.status not in _SETTLES[new_status]:
            return None
        record.status = new_status
        record.next_attempt_at = ""
        if new_status == Status.COMPLETED:
            url = str(content.get("url") or "")
            # Only a plain https link goes into a ticket comment.
            record.url = url if re.fullmatch(r"https://[^\s<>\"'`]{1,2000}", url) else ""
            record.microsoft_id = str(content.get("microsoftId") or "")[:200]
            record.last_error = ""
        elif new_status == Status.FAILED_IN_POINT:
            record.last_error = str(content.get("error") or "Syskit Point reported a failure")[:1000]
            # Syskit's documented example spells the key with a trailing space.
            correlation = content.get("correlationId", content.get("correlationId "))
            record.correlation_id = str(correlation or "")[:200]
        else:
            record.last_error = ""
        settled = True
        return record

    record = runtime.ledger.change(target.source, target.ticket, settle)
    return record if record is not None and settled else None


# == desk updates =============================================================


def desk_targets(runtime: Runtime, record: LedgerRecord) -> list[str]:
    """Where this request's outcome can be written: jira, servicenow, callback."""
    s = runtime.settings
    targets = []
    if record.source == "jira" and s.jira_configured:
        targets.append("jira")
    if record.source == "servicenow" and record.reply_to.get("sysId") and s.servicenow_configured:
        targets.append("servicenow")
    if record.reply_to.get("callbackUrl"):
        targets.append("callback")
    return targets


def queue_desk_update(runtime: Runtime, record: LedgerRecord, update: str) -> bool:
    if not desk_targets(runtime, record):
        return False
    try:
        runtime.desk_queue.schedule(QueueKey(record.source, record.ticket, str(update)), 0)
    except Exception as exc:
        log.error(
            "could not queue the desk update %s for %s/%s: %s",
            update,
            record.source,
            record.ticket,
            type(exc).__name__,
            extra={"bridge_event": "desk_update", "outcome": "not_queued"},
        )
        return False
    return True


def outcome_text(record: LedgerRecord, update: str) -> str:
    kind = {
        "teams": "Team",
        "groups": "Microsoft 365 group",
        "sites": "SharePoint site",
        "yammer": "Viva Engage community",
    }.get(record.workspace_type, "workspace")
    name = record.display_name
    if update == Status.PROVISIONING:
        return f'Syskit Point started provisioning the {kind} "{name}".'
    if update == Status.COMPLETED:
        return f'The {kind} "{name}" is ready: {record.url or "(no link given)"}'
    if update == Status.FAILED_IN_POINT:
        suffix = f" (correlation id {record.correlation_id})" if record.correlation_id else ""
        return f'Syskit Point could not provision the {kind} "{name}": {record.last_error}{suffix}'
    if update == Status.REJECTED:
        return f'Syskit Point refused the request for the {kind} "{name}": {record.last_error}'
    return (
        f'The request for the {kind} "{name}" could not be sent to Syskit Point: {record.last_error}. '
        "An operator can replay it."
    )


_FAILURES = (Status.FAILED_IN_POINT, Status.REJECTED, Status.FAILED)


def desk_update(runtime: Runtime, message: str) -> str:
    """Write one outcome to its desk; each step at most once. Returns what happened."""
    try:
        key = QueueKey.decode(message)
    except ValueError:
        log.error("dropped a malformed desk-update message")
        return "malformed"
    record = runtime.ledger.get(key.source, key.ticket)
    if record is None or not key.update:
        return "unknown"
    if key.update == Status.PROVISIONING and record.status != Status.PROVISIONING:
        # The outcome arrived first (queue messages run in any order): "started" would only confuse.
        log.info(
            "desk update %s for %s/%s skipped: the request is %s now",
            key.update,
            key.source,
            key.ticket,
            record.status,
            extra={"bridge_event": "desk_update", "source": key.source, "ticket": key.ticket, "outcome": "superseded"},
        )
        return "superseded"
    steps = _steps(runtime, record, key.update)
    for step, write in steps:
        if step in record.desk_updates:
            continue
        try:
            write()
        except Exception as exc:
            return _desk_failure(runtime, key, record, step, exc)

        def mark(latest: LedgerRecord, step: str = step) -> LedgerRecord | None:
            if step in latest.desk_updates:
                return None
            latest.desk_updates = [*latest.desk_updates, step]
            return latest

        record = runtime.ledger.change(key.source, key.ticket, mark) or record
    log.info(
        "desk update %s written for %s/%s",
        key.update,
        key.source,
        key.ticket,
        extra={
            "bridge_event": "desk_update",
            "source": key.source,
            "ticket": key.ticket,
            "outcome": "written",
            "update": key.update,
        },
    )
    return "written"


def _steps(runtime: Runtime, record: LedgerRecord, update: str) -> list[tuple[str, Any]]:
    s = runtime.settings
    text = outcome_text(record, update)
    steps: list[tuple[str, Any]] = []
    targets = desk_targets(runtime, record)
    if "jira" in targets:
        issue = record.reply_to.get("issueKey") or record.ticket
        steps.append((f"{update}:jira-comment", lambda: runtime.jira.comment(issue, text, s.jira_internal_note)))
        transition = (
            s.raw("JIRA_TRANSITION_COMPLETED")
            if update == Status.COMPLETED
            else (s.raw("JIRA_TRANSITION_FAILED") if update in _FAILURES else "")
        )
        if transition:

            def move() -> None:
                if not runtime.jira.transition(issue, transition):
                    log.warning("Jira issue %s offers no transition named %r now", issue, transition)

            steps.append((f"{update}:jira-transition", move))
    if "servicenow" in targets:
        fields = {"work_notes": text}
        state = (
            s.raw("SERVICENOW_STATE_COMPLETED")
            if update == Status.COMPLETED
            else (s.raw("SERVICENOW_STATE_FAILED") if update in _FAILURES else "")
        )
        if state:
            fields["state"] = state
        steps.append((f"{update}:servicenow", lambda: runtime.servicenow.update_item(record.reply_to["sysId"], fields)))
    if "callback" in targets:
        steps.append((f"{update}:callback", lambda: send_callback(runtime, record, update, text)))
    return steps


def send_callback(runtime: Runtime, record: LedgerRecord, update: str, text: str) -> None:
    """POST the outcome to the caller's ticket.callbackUrl, signed with Standard Webhooks."""
    import json

    import requests

    payload = {
        "type": "provisioning." + ("started" if update == Status.PROVISIONING else str(update)),
        "ticket": {"source": record.source, "id": record.ticket},
        "status": str(update),
        "message": text,
        "pointRequestId": record.point_request_id or None,
        "workspace": {
            "type": record.workspace_type,
            "displayName": record.display_name,
            "url": record.url or None,
            "microsoftId": record.microsoft_id or None,
        },
    }
    data = json.dumps(payload, separators=(",", ":"))
    headers = {"Content-Type": "application/json"}
    names = runtime.settings.signing_secret_names("provision")
    if names:
        from standardwebhooks.webhooks import Webhook

        # The same id on every attempt, so the receiver can drop copies.
        message_id = f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{record.source}/{record.ticket}/{update}').hex}"
        moment = datetime.now(UTC)
        # Signed with every active secret (two during a rotation), space-separated as the spec allows.
        signatures = [Webhook(secret).sign(message_id, moment, data) for secret in runtime.secrets.values(names)]
        headers.update(
            {
                "webhook-id": message_id,
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": " ".join(signatures),
            }
        )
    try:
        # No redirects: a signed outcome goes to the URL the caller gave, nowhere else.
        response = requests.post(
            record.reply_to["callbackUrl"],
            data=data.encode("utf-8"),
            headers=headers,
            timeout=(3.05, 10),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise CallbackError(f"callback unreachable: {type(exc).__name__}", 0) from None
    if not 200 <= response.status_code < 300:
        raise CallbackError(f"callback answered {response.status_code}", response.status_code)


class CallbackError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.transient = status in (0, 408, 429) or status >= 500


def failed_attempts(record: LedgerRecord, update: str) -> int:
    """How many times writing this update back has failed so far."""
    prefix = f"{update}:attempts="
    counts = [mark[len(prefix) :] for mark in record.desk_updates if mark.startswith(prefix)]
    return max((int(c) for c in counts if c.isdigit()), default=0)


def _reread_credential(runtime: Runtime, desk: str) -> None:
    """Drop the desk client and read its secret again, so the next try uses a rotated one."""
    s = runtime.settings
    if desk == "jira":
        setting = "JIRA_API_TOKEN_SECRET_NAME"
    elif s.raw("SERVICENOW_TOKEN_SECRET_NAME"):
        setting = "SERVICENOW_TOKEN_SECRET_NAME"
    else:
        setting = "SERVICENOW_PASSWORD_SECRET_NAME"
    runtime.forget(desk)
    try:
        runtime.secrets.get(s.require(setting), refresh=True)
    except (SecretUnavailable, ConfigurationError) as exc:
        log.error("could not read the %s credential again: %s", desk, exc, extra={"bridge_event": "secret"})


def _desk_failure(runtime: Runtime, key: QueueKey, record: LedgerRecord, step: str, exc: Exception) -> str:
    transient = getattr(exc, "transient", True)
    status = getattr(exc, "status", None)
    desk = "jira" if step.endswith(("jira-comment", "jira-transition")) else step.rpartition(":")[2]
    if status == 401 and desk in ("jira", "servicenow"):
        # The credential may have been rotated: read it again from Key Vault and try again.
        _reread_credential(runtime, desk)
        transient = True
    # One counter per update, kept beside the step markers: "completed:attempts=3".
    attempts_key = f"{key.update}:attempts="
    attempts = 1 + failed_attempts(record, key.update)
    schedule = runtime.settings.retry_schedule
    delay = next_delay(attempts, scheduled_age(attempts, schedule), schedule, runtime.settings.retry_max_age)
    reason = f"{type(exc).__name__}: {exc}"[:300]
    if status == 404 and step.endswith("jira-comment") and runtime.settings.jira_internal_note:
        reason += " (not a Jira Service Management request? set JIRA_INTERNAL_NOTE=false for plain comments)"

    def count(latest: LedgerRecord) -> LedgerRecord:
        kept = [mark for mark in latest.desk_updates if not mark.startswith(attempts_key)]
        latest.desk_updates = [*kept, f"{attempts_key}{failed_attempts(latest, key.update) + 1}"]
        return latest

    runtime.ledger.change(key.source, key.ticket, count)
    if transient and delay is not None:
        log.warning(
            "desk update %s for %s/%s failed (%s); next try in %d s",
            step,
            key.source,
            key.ticket,
            reason,
            delay,
            extra={"bridge_event": "desk_update", "source": key.source, "ticket": key.ticket, "outcome": "queued"},
        )
        runtime.desk_queue.schedule(key, delay)
        return "queued"
    log.error(
        "desk update %s for %s/%s given up: %s",
        step,
        key.source,
        key.ticket,
        reason,
        extra={"bridge_event": "poisoned", "source": key.source, "ticket": key.ticket, "outcome": "failed"},
    )
    runtime.desk_queue.to_poison(key)
    return "failed"
