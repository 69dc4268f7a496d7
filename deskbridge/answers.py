"""What the use cases answer: plain values the handlers turn into HTTP responses.

Shared by intake (approvals, the status route) and events (Syskit Point's
webhooks); nothing here knows Azure Functions types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deskbridge import telemetry
from deskbridge.auth import SignatureError
from deskbridge.desks import TicketRef
from deskbridge.errors import SecretUnavailable, StorageError
from deskbridge.ledger import LedgerRecord
from deskbridge.model import FieldError, InvalidRequest, Status
from deskbridge.settings import ConfigurationError

log = telemetry.logger("deskbridge")

# The HTTP status a caller gets for a request in each ledger status.
ANSWER_STATUS = {
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


def record_answer(record: LedgerRecord, http_status: int | None = None) -> Answer:
    errors = (
        [FieldError("point", record.last_error)]
        if record.last_error
        and record.status in (Status.REJECTED, Status.FAILED, Status.FAILED_IN_POINT, Status.UNCERTAIN, Status.QUEUED)
        else []
    )
    return answer(
        record.status,
        http_status or ANSWER_STATUS.get(Status(record.status), 200),
        TicketRef(record.source, record.ticket),
        errors,
        pointRequestId=record.point_request_id or None,
        nextAttemptAt=record.next_attempt_at if record.status == Status.QUEUED else None,
        warnings=record.warnings,
    )


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
    log.error("%s", exc, extra={"bridge_event": "secret"})  # the log names the secret; the answer does not
    shown = exc.public if isinstance(exc, SecretUnavailable) else "a secret could not be read from Key Vault"
    return answer(Status.FAILED, 503, errors=[FieldError("keyVault", shown)])


def storage_answer(exc: StorageError) -> Answer:
    """The 503 for a failure of Azure Storage, logged for the operator without its address or key."""
    sdk = type(exc.__cause__).__name__ if exc.__cause__ is not None else "StorageError"
    log.error("storage unavailable: %s (%s)", sdk, exc, extra={"bridge_event": "storage"})
    return answer(
        Status.FAILED, 503, errors=[FieldError("storage", f"Azure Storage is unavailable ({sdk}); send it again later")]
    )
