"""Closing the loop: Syskit Point's webhooks in.

An event is verified on its raw bytes, correlated to the ledger by workspace
name and type, and settles that request; when several open requests share
the name and type, Syskit Point is asked about each by its request id and
only the one it confirms is settled (none, when it confirms none or several:
the reconciler's poll settles them later);
the ticket is then owed the outcome (deskbridge.writeback writes it).

Each idempotency key is applied once: it is stored on the record it settled,
in the same write, so a retry of a delivery whose first handling died half
way is told apart from a replay. Nothing else records it: a failure before
that write leaves nothing behind, and Syskit Point's retry goes through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deskbridge import jsonbody, telemetry
from deskbridge.answers import REFUSALS, Answer, answer, refusal, storage_answer
from deskbridge.auth import PointSignature
from deskbridge.desks import TicketRef
from deskbridge.errors import StorageError
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import LedgerRecord
from deskbridge.lifecycle import Event, allowed
from deskbridge.model import EVENT_WORKSPACE_TYPES, FieldError, InvalidRequest, Status, name_key
from deskbridge.runtime import Runtime
from deskbridge.settings import ConfigurationError

log = telemetry.logger("deskbridge.events")

EVENTS = {
    "ProvisioningStarted": Event.EVENT_STARTED,
    "ProvisioningCompleted": Event.EVENT_COMPLETED,
    "ProvisioningFailed": Event.EVENT_FAILED,
}


def handle_point_event(runtime: Runtime, body: bytes, headers: Mapping[str, str]) -> Answer:
    started = runtime.clock.monotonic()
    try:
        result = _handle(runtime, body, headers)
    except REFUSALS as exc:
        result = refusal(exc, signature_field="Signature")
    except StorageError as exc:  # Syskit Point sends the event again later; its delivery id was released
        result = storage_answer(exc)
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
            "duration_ms": round((runtime.clock.monotonic() - started) * 1000, 1),
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
    PointSignature(runtime.secrets.values(names)).verify(body, headers)
    jsonbody.check_content_type(headers)
    event = jsonbody.parse(body)
    if not isinstance(event, dict):
        raise InvalidRequest([FieldError("body", "must be a JSON object")])
    event_type = event.get("type")
    content = event.get("content")
    meta = event.get("meta") if isinstance(event.get("meta"), dict) else {}
    if event_type not in EVENTS:
        return answer(Status.IGNORED, 200, reason=f"event type {str(event_type)[:60]!r} is not handled")
    if not isinstance(content, dict) or not isinstance(content.get("name"), str) or not content["name"].strip():
        raise InvalidRequest([FieldError("content.name", "is required")])
    workspace_type = EVENT_WORKSPACE_TYPES.get(str(content.get("type")))
    if workspace_type is None:
        raise InvalidRequest([FieldError("content.type", "must be one of " + ", ".join(EVENT_WORKSPACE_TYPES))])
    key = meta.get("idempotencyKey")
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise InvalidRequest([FieldError("meta.idempotencyKey", "is required")])

    return _settle(runtime, event_type, content, workspace_type, key)


def _settle(runtime: Runtime, event_type: str, content: dict[str, Any], workspace_type: str, key: str) -> Answer:
    event = EVENTS[event_type]
    records = runtime.ledger.by_name(name_key(content["name"]), workspace_type)
    if any(r.applied_event(key) for r in records):
        return answer("duplicate", 200, event=event_type)
    candidates = [r for r in records if allowed(r.status, event)]
    if not candidates:
        log.warning(
            "Syskit Point event %s for %r matches no open request (provisioned outside the bridge?)",
            event_type,
            content["name"][:100],
            extra={"bridge_event": "point_event", "outcome": "unmatched"},
        )
        return answer("unmatched", 202, event=event_type)
    if len(candidates) > 1:
        # Two tickets asked for one name (a resubmission, two bridges, Syskit Point's own UI): the event does
        # not say which request it is about, so Syskit Point is asked about each by its request id.
        from deskbridge import outcomes

        confirmed = outcomes.confirmed(runtime, candidates, event)
        if len(confirmed) != 1:
            log.warning(
                "Syskit Point event %s for %r matches %d open requests and Syskit Point confirmed %s of them by "
                "request id; settling none (the reconciler asks about each later)",
                event_type,
                content["name"][:100],
                len(candidates),
                len(confirmed) or "none",
                extra={"bridge_event": "point_event", "outcome": "unconfirmed"},
            )
            return answer("unconfirmed", 202, event=event_type)
        log.info(
            "Syskit Point event %s for %r matches %d open requests; Syskit Point confirmed %s/%s by request id",
            event_type,
            content["name"][:100],
            len(candidates),
            confirmed[0].source,
            confirmed[0].ticket,
        )
        candidates = confirmed
    change = Change(event, error=_error(event, content), fields=_fields(event, content), event_key=key)
    for target in candidates:
        already = False

        def still_open(latest: LedgerRecord) -> bool:
            nonlocal already
            already = latest.applied_event(key)  # a concurrent copy of this delivery got there first
            return not already

        moved = in_ledger(runtime, target.source, target.ticket, change, still_open)
        if already:
            return answer("duplicate", 200, event=event_type)
        if moved is None or not moved.applied:
            continue  # settled by another event meanwhile: try the next open request
        record = moved.record
        return answer(
            record.status,
            200,
            TicketRef(record.source, record.ticket),
            event=event_type,
            pointRequestId=record.point_request_id or None,
        )
    return answer("unmatched", 202, event=event_type)


def _fields(event: Event, content: dict[str, Any]) -> dict[str, Any]:
    """What the event tells about the workspace, checked before it is stored."""
    if event == Event.EVENT_COMPLETED:
        url = str(content.get("url") or "")
        return {
            # Only a plain https link goes into a ticket comment.
            "url": url if re.fullmatch(r"https://[^\s<>\"'`]{1,2000}", url) else "",
            "microsoft_id": str(content.get("microsoftId") or "")[:200],
        }
    if event == Event.EVENT_FAILED:
        # Syskit's documented example spells the key with a trailing space.
        correlation = content.get("correlationId", content.get("correlationId "))
        return {"correlation_id": str(correlation or "")[:200]}
    return {}


def _error(event: Event, content: dict[str, Any]) -> str:
    if event == Event.EVENT_FAILED:
        return str(content.get("error") or "Syskit Point reported a failure")[:1000]
    return ""
