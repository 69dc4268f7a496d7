"""The use cases: accept an approval, retry one, settle one from Syskit Point's events.

Plain values in, :class:`Answer` out; nothing here knows Azure Functions
types. Clients come from :class:`deskbridge.runtime.Runtime`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from deskbridge import jsonbody, telemetry
from deskbridge.auth import SignatureError, verify_hub_signature, verify_standard_webhook
from deskbridge.desks import Approval, Ignored, TicketRef
from deskbridge.ledger import LedgerRecord, StaleRecord, iso, parse_iso, utcnow
from deskbridge.model import (
    FieldError,
    InvalidRequest,
    Limits,
    Policy,
    ProvisioningRequest,
    Status,
    validate,
)
from deskbridge.retries import QueueKey, next_delay
from deskbridge.runtime import Runtime
from deskbridge.secrets import SecretUnavailable
from deskbridge.settings import ConfigurationError

log = telemetry.logger("deskbridge")

# The HTTP status a caller gets for a request in each ledger status.
_ANSWER_STATUS = {
    Status.PENDING: 202,
    Status.SUBMITTED: 200,
    Status.PROVISIONING: 200,
    Status.COMPLETED: 200,
    Status.QUEUED: 202,
    Status.UNCERTAIN: 202,
    Status.REJECTED: 422,
    Status.FAILED: 503,
    Status.FAILED_IN_POINT: 200,
}


@dataclass
class Answer:
    http_status: int
    body: dict[str, Any]
    log_fields: dict[str, Any] = field(default_factory=dict)


def answer(
    status: str,
    http_status: int,
    ticket: TicketRef | None = None,
    errors: list[FieldError] | None = None,
    **extra: Any,
) -> Answer:
    body: dict[str, Any] = {
        "status": str(status),
        "ticket": ticket.as_dict() if ticket else None,
        "pointRequestId": extra.pop("pointRequestId", None),
        "errors": [e.as_dict() for e in errors or []],
    }
    body.update({k: v for k, v in extra.items() if v not in (None, "", [])})
    return Answer(http_status, body)


def _record_answer(record: LedgerRecord, http_status: int | None = None) -> Answer:
    errors = (
        [FieldError("point", record.last_error)]
        if record.last_error
        and record.status in (Status.REJECTED, Status.FAILED, Status.FAILED_IN_POINT, Status.UNCERTAIN, Status.QUEUED)
        else []
    )
    return answer(
        record.status,
        http_status or _ANSWER_STATUS.get(Status(record.status), 200),
        TicketRef(record.source, record.ticket),
        errors,
        pointRequestId=record.point_request_id or None,
        nextAttemptAt=record.next_attempt_at if record.status == Status.QUEUED else None,
        warnings=record.warnings,
    )


def policy_from(runtime: Runtime) -> Policy:
    s = runtime.settings
    return Policy(
        allowed_template_ids=s.template_ids,
        default_template_ids=s.default_template_ids,
        default_workspace_type=s.default_workspace_type,
        limits=Limits(max_owners=s.max_owners, max_members=s.max_members),
    )


def request_from_record(record: LedgerRecord, policy: Policy) -> ProvisioningRequest:
    """The stored body, checked again: the ledger is data, and the settings may have changed since."""
    return validate(record.point_body() | {"workspaceType": record.workspace_type}, policy)


REFUSALS = (InvalidRequest, SignatureError, ConfigurationError, SecretUnavailable)


def refusal(exc: Exception, signature_field: str = "signature") -> Answer:
    """The answer to a call the bridge cannot act on: the caller's fault (4xx) or a setting or Key Vault (503)."""
    if isinstance(exc, InvalidRequest):
        return answer(Status.REJECTED, exc.http_status, errors=exc.errors)
    if isinstance(exc, SignatureError):
        return answer(Status.REJECTED, 401, errors=[FieldError(signature_field, str(exc))])
    if isinstance(exc, ConfigurationError):
        log.error("configuration problem: %s", exc, extra={"bridge_event": "config", "setting": exc.setting})
        return answer(Status.FAILED, 503, errors=[FieldError(exc.setting, f"setting {exc.problem}")])
    log.error("%s", exc, extra={"bridge_event": "secret"})
    return answer(Status.FAILED, 503, errors=[FieldError("keyVault", str(exc))])


class Bridge:
    def __init__(self, runtime: Runtime, clock: Any = time.monotonic) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self._clock = clock

    # == accepting an approval ===============================================
    def accept(self, route: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """A desk's approval callback (route: provision, jira or servicenow)."""
        started = self._clock()
        delivery: tuple[str, str] | None = None
        try:
            delivery = self._verify_caller(route, body, headers)
            result = self._accept(route, body, headers)
        except REFUSALS as exc:
            result = refusal(exc)
        if delivery and result.http_status >= 500:
            self._forget_delivery(*delivery)  # let the sender's retry through
        ticket = result.body.get("ticket") or {}
        log.info(
            "approval %s %s %s",
            route,
            ticket.get("id", "-"),
            result.body["status"],
            extra={
                "bridge_event": "approval",
                "route": route,
                "source": ticket.get("source", route),
                "ticket": ticket.get("id", ""),
                "outcome": result.body["status"],
                "http_status": result.http_status,
                "point_status": result.log_fields.get("point_status", ""),
                "duration_ms": round((self._clock() - started) * 1000, 1),
            },
        )
        return result

    def _verify_caller(self, route: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, str] | None:
        s = self.settings
        if len(body) > s.max_body_bytes:
            raise InvalidRequest(
                [FieldError("body", f"is {len(body)} bytes; at most {s.max_body_bytes} are accepted")], http_status=413
            )
        jsonbody.check_content_type(headers)
        names = s.signing_secret_names(route)
        required = s.signature_required(route)
        if route == "jira":
            present = any(k.lower() == "x-hub-signature" for k in headers)
        else:
            present = any(k.lower() == "webhook-signature" for k in headers)
        if not names or not (required or present):
            return None
        secrets = self.runtime.secrets.values(names)
        if route == "jira":
            verify_hub_signature(body, headers, secrets)
            return None
        webhook_id = verify_standard_webhook(body, headers, secrets)
        if not self.runtime.deliveries.first_time(route, webhook_id):
            raise InvalidRequest([FieldError("webhook-id", "this delivery was already received (replay)")], 409)
        return (route, webhook_id)

    def _forget_delivery(self, kind: str, delivery_id: str) -> None:
        try:
            self.runtime.deliveries.forget(kind, delivery_id)
        except Exception:  # best effort: the ledger still prevents a second call
            log.warning("could not forget delivery %s", kind)

    def _accept(self, route: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        payload = jsonbody.parse(body)
        approval = self._approval(route, payload, headers)
        if isinstance(approval, Ignored):
            return answer(Status.IGNORED, 200, reason=approval.reason)
        if approval.missing:
            self._resolve_emails(approval)
        request = validate(approval.draft, policy_from(self.runtime))
        ticket = approval.ticket
        if not ticket.id:
            from deskbridge.desks.generic import body_ticket_id

            ticket = TicketRef(ticket.source, body_ticket_id(request))
        self.runtime.point  # noqa: B018 - a missing Syskit Point setting refuses the call before anything is recorded
        return self._submit(ticket, request, approval)

    def _approval(self, route: str, payload: Any, headers: Mapping[str, str]) -> Approval | Ignored:
        s = self.settings
        if route == "jira":
            from deskbridge.desks.jira import JiraFields, parse

            return parse(
                payload,
                JiraFields(
                    approved_status=s.jira_approved_status,
                    display_name=s.raw("JIRA_FIELD_DISPLAY_NAME"),
                    description=s.raw("JIRA_FIELD_DESCRIPTION"),
                    owners=s.raw("JIRA_FIELD_OWNERS"),
                    members=s.raw("JIRA_FIELD_MEMBERS"),
                    workspace_type=s.raw("JIRA_FIELD_WORKSPACE_TYPE"),
                    privacy=s.raw("JIRA_FIELD_PRIVACY"),
                    template=s.raw("JIRA_FIELD_TEMPLATE"),
                    post_function_match=s.jira_post_function_match,
                ),
            )
        if route == "servicenow":
            from deskbridge.desks.servicenow import CatalogVariables, parse

            return parse(
                payload,
                CatalogVariables(
                    display_name=s.raw("SERVICENOW_VARIABLE_DISPLAY_NAME"),
                    description=s.raw("SERVICENOW_VARIABLE_DESCRIPTION"),
                    workspace_type=s.raw("SERVICENOW_VARIABLE_WORKSPACE_TYPE"),
                    privacy=s.raw("SERVICENOW_VARIABLE_PRIVACY"),
                    template=s.raw("SERVICENOW_VARIABLE_TEMPLATE"),
                ),
            )
        from deskbridge.desks.generic import parse

        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
        return parse(payload, key)

    def _resolve_emails(self, approval: Approval) -> None:
        """Ask Jira for users whose e-mail the payload lacked; 422 if an owner stays unknown."""
        from deskbridge.desks.jira import JiraError

        jira = self.runtime.jira
        still_missing = []
        for user in approval.missing:
            email = None
            if jira and user.account_id:
                try:
                    email = jira.email_of(user.account_id)
                except JiraError as exc:
                    log.warning("Jira user lookup failed: %s", exc)
            if email:
                approval.draft.setdefault(user.role, []).append(email)
            else:
                still_missing.append(user)
        owners = [u for u in still_missing if u.role == "owners"]
        for user in still_missing:
            if user.role == "members":
                approval.warnings.append(
                    f"member {user.display_name or user.account_id} ({user.account_id}) has no visible e-mail address "
                    "and was left out"
                )
        if owners:
            names = "; ".join(f"{u.display_name or '?'} (accountId {u.account_id or '?'})" for u in owners)
            hint = "" if jira else " (set JIRA_URL, JIRA_EMAIL and JIRA_API_TOKEN_SECRET_NAME to look them up)"
            raise InvalidRequest(
                [
                    FieldError(
                        "owners",
                        f"no e-mail address visible for: {names}; make the e-mail visible in the "
                        f"Atlassian profile or pick another owner{hint}",
                    )
                ],
                http_status=422,
            )

    # -- the ledger and the first attempt -----------------------------------
    def _submit(self, ticket: TicketRef, request: ProvisioningRequest, approval: Approval) -> Answer:
        ledger = self.runtime.ledger
        canonical = request.canonical_json()
        record = LedgerRecord(
            source=ticket.source,
            ticket=ticket.id,
            status=Status.PENDING,
            workspace_type=request.workspace_type,
            display_name=request.display_name,
            name_key=request.name_key,
            desired_url=request.desired_url,
            template_id=request.template_id,
            owner_count=len(request.owners),
            member_count=len(request.members),
            body=json.dumps(request.point_body(), ensure_ascii=False),
            body_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            reply_to=dict(approval.reply_to),
            warnings=list(approval.warnings),
        )
        if not ledger.insert(record):
            existing = ledger.get(ticket.source, ticket.id)
            if existing is None:  # deleted meanwhile by an operator: start again
                return self._submit(ticket, request, approval)
            if existing.status == Status.REJECTED and existing.body_hash != record.body_hash:
                # The ticket was corrected after Syskit Point refused it: try the new content.
                record.created_at, record.etag = existing.created_at, existing.etag
                try:
                    record = ledger.save(record)
                except StaleRecord:
                    return self._duplicate(ledger.get(ticket.source, ticket.id) or existing)
            else:
                return self._duplicate(existing)
        settled = self._attempt(record, request)
        result = _record_answer(settled, 201 if settled.status == Status.SUBMITTED else None)
        result.log_fields["point_status"] = settled.point_status or ""
        return result

    def _duplicate(self, record: LedgerRecord) -> Answer:
        """The same ticket again: the recorded outcome, never a second call."""
        deadline = self._clock() + self.settings.point_retry_budget
        while record.status == Status.PENDING and self._clock() < deadline:
            time.sleep(0.05)
            record = self.runtime.ledger.get(record.source, record.ticket) or record
        result = _record_answer(record)
        result.body["duplicate"] = True
        return result

    def _attempt(self, record: LedgerRecord, request: ProvisioningRequest | None = None) -> LedgerRecord:
        """One call to Syskit Point for a pending record, and what follows from it."""
        from deskbridge.point import CallOutcome

        if request is None:  # a retry: the body comes from the ledger
            try:
                request = request_from_record(record, policy_from(self.runtime))
            except InvalidRequest as exc:
                record.status, record.next_attempt_at = Status.REJECTED, ""
                record.last_error = f"no longer valid: {exc}"[:1000]
                record = self._save_outcome(record)
                self._notify_desk(record, record.status)
                return record
        result = self.runtime.point.provision(request)
        now = utcnow()
        record.attempts += 1
        record.point_status = result.http_status or 0
        queue_delay: int | None = None
        if result.outcome == CallOutcome.ACCEPTED:
            record.status = Status.SUBMITTED
            record.point_request_id = result.request_id or ""
            record.submitted_at = iso(now)
            record.last_error = record.next_attempt_at = ""
        elif result.outcome == CallOutcome.REJECTED:
            record.status, record.last_error, record.next_attempt_at = Status.REJECTED, result.message, ""
        elif result.outcome == CallOutcome.UNCERTAIN:
            record.status, record.last_error, record.next_attempt_at = Status.UNCERTAIN, result.message, ""
            log.warning(
                "uncertain %s/%s: %s",
                record.source,
                record.ticket,
                result.message,
                extra={"bridge_event": "uncertain", "source": record.source, "ticket": record.ticket},
            )
        else:
            since = parse_iso(record.replayed_at or record.created_at) or now
            queue_delay = next_delay(
                record.attempts - record.replay_base,
                (now - since).total_seconds(),
                self.settings.retry_schedule,
                self.settings.retry_max_age,
                result.retry_after,
            )
            record.last_error = result.message
            if result.outcome == CallOutcome.UNAUTHORIZED:
                log.error(
                    "Syskit Point authorisation failed for %s/%s: %s",
                    record.source,
                    record.ticket,
                    result.message,
                    extra={
                        "bridge_event": "authorization",
                        "source": record.source,
                        "ticket": record.ticket,
                        "point_status": result.http_status or "",
                    },
                )
            if queue_delay is None:
                record.status, record.next_attempt_at = Status.FAILED, ""
            else:
                record.status = Status.QUEUED
                record.next_attempt_at = iso(now + timedelta(seconds=queue_delay))
        record = self._save_outcome(record)
        key = QueueKey(record.source, record.ticket)
        if record.status == Status.QUEUED and queue_delay is not None:
            try:
                self.runtime.retry_queue.schedule(key, queue_delay)
            except Exception as exc:  # storage down: say so where an operator looks
                record.status = Status.FAILED
                record.last_error = (
                    f"could not queue a retry ({type(exc).__name__}); replay it. Last error: {record.last_error}"
                )
                record.next_attempt_at = ""
                record = self._save_outcome(record)
        if record.status == Status.FAILED:
            self._poison(key, record)
        if record.status in (Status.REJECTED, Status.FAILED):
            self._notify_desk(record, record.status)
        return record

    def _save_outcome(self, record: LedgerRecord) -> LedgerRecord:
        try:
            return self.runtime.ledger.save(record)
        except StaleRecord:
            # A Syskit Point event settled it meanwhile: keep what the event said,
            # but remember the call's outcome details.
            current = self.runtime.ledger.get(record.source, record.ticket)
            if current is None:
                raise
            log.info(
                "ledger changed during the call for %s/%s; kept status %s", record.source, record.ticket, current.status
            )

            def keep(latest: LedgerRecord) -> LedgerRecord:
                latest.attempts = max(latest.attempts, record.attempts)
                latest.point_request_id = latest.point_request_id or record.point_request_id
                latest.point_status = record.point_status or latest.point_status
                return latest

            return self.runtime.ledger.change(record.source, record.ticket, keep) or current

    def _poison(self, key: QueueKey, record: LedgerRecord) -> None:
        log.error(
            "request %s/%s failed: %s",
            record.source,
            record.ticket,
            record.last_error,
            extra={
                "bridge_event": "failed",
                "source": record.source,
                "ticket": record.ticket,
                "outcome": Status.FAILED,
            },
        )
        try:
            self.runtime.retry_queue.to_poison(key)
        except Exception as exc:
            log.error("could not write %s/%s to the poison queue: %s", key.source, key.ticket, type(exc).__name__)

    # == the status route =====================================================
    def status(self, source: str, ticket: str) -> Answer:
        try:
            record = self.runtime.ledger.get(source, ticket) if source and ticket else None
        except ConfigurationError as exc:
            return answer(Status.FAILED, 503, errors=[FieldError(exc.setting, f"setting {exc.problem}")])
        if record is None:
            return answer(
                "unknown",
                404,
                TicketRef(source, ticket),
                [FieldError("ticket", "no request is recorded for this ticket")],
            )
        return Answer(200, record.summary())

    # == the retry queue =======================================================
    def retry(self, message: str) -> str:
        """A retry message came due. Returns what happened (for logs and tests)."""
        try:
            key = QueueKey.decode(message)
        except ValueError as exc:
            log.error("dropped a malformed retry message: %s", exc)
            return "malformed"
        ledger = self.runtime.ledger
        record = ledger.get(key.source, key.ticket)
        if record is None:
            log.warning("retry for unknown request %s/%s dropped", key.source, key.ticket)
            return "unknown"
        if record.status == Status.PENDING and self._stale(record):
            record.status = Status.UNCERTAIN
            record.last_error = "a worker stopped while calling Syskit Point; check Syskit Point, then replay"
            self._save_outcome(record)
            return Status.UNCERTAIN
        if record.status != Status.QUEUED:
            log.info(
                "retry for %s/%s skipped: already %s",
                key.source,
                key.ticket,
                record.status,
                extra={"bridge_event": "retry", "source": key.source, "ticket": key.ticket, "outcome": "skipped"},
            )
            return "skipped"
        record.status = Status.PENDING  # claim it: a second message for it now finds it pending
        try:
            record = ledger.save(record)
        except StaleRecord:
            return "skipped"
        started = self._clock()
        settled = self._attempt(record)
        log.info(
            "retry %s/%s %s",
            key.source,
            key.ticket,
            settled.status,
            extra={
                "bridge_event": "retry",
                "source": key.source,
                "ticket": key.ticket,
                "outcome": settled.status,
                "attempts": settled.attempts,
                "point_status": settled.point_status or "",
                "duration_ms": round((self._clock() - started) * 1000, 1),
            },
        )
        return settled.status

    def _stale(self, record: LedgerRecord) -> bool:
        connect, read = self.settings.point_timeouts
        updated = parse_iso(record.updated_at)
        limit = self.settings.point_retry_budget + connect + read + 60
        return updated is None or (utcnow() - updated).total_seconds() > limit

    def poisoned(self, message: str) -> str:
        """A retry message reached the poison queue: make sure the ledger says failed."""
        try:
            key = QueueKey.decode(message)
        except ValueError:
            log.error("malformed message in the poison queue")
            return "malformed"

        def fail(record: LedgerRecord) -> LedgerRecord | None:
            if record.status not in (Status.QUEUED, Status.PENDING):
                return None
            record.status = Status.FAILED
            record.last_error = record.last_error or "the retry message was poisoned (the worker kept failing)"
            record.next_attempt_at = ""
            return record

        record = self.runtime.ledger.change(key.source, key.ticket, fail)
        log.error(
            "poisoned retry for %s/%s; ledger says %s",
            key.source,
            key.ticket,
            record.status if record else "nothing",
            extra={
                "bridge_event": "poisoned",
                "source": key.source,
                "ticket": key.ticket,
                "outcome": record.status if record else "unknown",
            },
        )
        return record.status if record else "unknown"

    # == operator replay ======================================================
    def replay(self, source: str, ticket: str) -> LedgerRecord:
        """Queue a failed, uncertain or stuck request for an attempt now."""

        def requeue(record: LedgerRecord) -> LedgerRecord:
            replayable = (Status.FAILED, Status.UNCERTAIN, Status.QUEUED)
            if record.status not in replayable and not (record.status == Status.PENDING and self._stale(record)):
                raise ValueError(
                    f"{source}/{ticket} is {record.status}; only failed, uncertain or queued requests can be replayed"
                )
            record.status = Status.QUEUED
            record.replayed_at = iso(utcnow())  # a replay starts the schedule again
            record.replay_base = record.attempts
            record.next_attempt_at = record.replayed_at
            return record

        record = self.runtime.ledger.change(source, ticket, requeue)
        if record is None:
            raise LookupError(f"no request is recorded for {source}/{ticket}")
        self.runtime.retry_queue.schedule(QueueKey(source, ticket), 0)
        log.warning(
            "operator replayed %s/%s",
            source,
            ticket,
            extra={"bridge_event": "replay", "source": source, "ticket": ticket},
        )
        return record

    # == Syskit Point events and desk updates (see events.py) =================
    def _notify_desk(self, record: LedgerRecord, update: str) -> None:
        from deskbridge.events import queue_desk_update

        queue_desk_update(self.runtime, record, update)
