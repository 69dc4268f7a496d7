"""The operator routes (``/api/operator/requests...``, at the admin level): plain values in, an Answer out.

One implementation with the CLI: every route calls deskbridge.operator. The
Functions host admits only the app's master key at the admin level (its key
name is ``_master``); the Python worker is not told which key was used, so the
actor logged is that key's name, plus the signed-in principal when App Service
Authentication puts one in ``x-ms-client-principal-name``, plus the name the
caller states in ``x-bridge-operator`` (not verified, and logged as stated).
The key itself is never read, logged or answered.

Routes start with ``operator/``, not ``admin/``: the Functions host keeps
``admin/`` for its own API and refuses to register a function route there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from deskbridge import intake, operator
from deskbridge.answers import Answer, answer, refusal, storage_answer
from deskbridge.desks import TicketRef
from deskbridge.errors import StorageError
from deskbridge.model import FieldError, check_ticket
from deskbridge.runtime import Runtime
from deskbridge.settings import ConfigurationError

PAGE_DEFAULT = 50
MASTER_KEY_NAME = "_master"  # the one key the admin level admits
_NAME = re.compile(r"[^\w.@ +-]")


def actor(headers: Mapping[str, str]) -> str:
    """Who asked: the key's name, the signed-in principal if any, the name the caller states if any."""
    lowered = {k.lower(): v for k, v in headers.items()}
    parts = [f"key={MASTER_KEY_NAME}"]
    for header, label in (("x-ms-client-principal-name", "principal"), ("x-bridge-operator", "stated")):
        value = _NAME.sub("", lowered.get(header, ""))[:80].strip()
        if value:
            parts.append(f"{label}={value}")
    return " ".join(parts)


def _bad(field: str, message: str, http_status: int = 400) -> Answer:
    return answer("refused", http_status, errors=[FieldError(field, message)])


def _flag(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered in ("true", "1", "yes") else False if lowered in ("false", "0", "no", "") else None


def list_requests(runtime: Runtime, params: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
    """GET /api/operator/requests?status=a,b&source=&since=&overdue=true&limit=&continuationToken="""
    statuses = tuple(s.strip() for s in params.get("status", "").split(",") if s.strip()) or None
    wrong = [s for s in statuses or () if s not in operator.STORED]
    if wrong:
        return _bad("status", f"unknown status {wrong[0]!r}; one of {', '.join(operator.STORED)}")
    overdue = _flag(params.get("overdue", ""))
    if overdue is None:
        return _bad("overdue", "must be true or false")
    try:
        since = operator.parse_since(params["since"]) if params.get("since") else None
    except ValueError as exc:
        return _bad("since", str(exc))
    limit_text = params.get("limit", "") or str(PAGE_DEFAULT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= operator.PAGE_MAX:
        return _bad("limit", f"must be a whole number from 1 to {operator.PAGE_MAX}")
    try:
        page = operator.find(
            runtime,
            statuses,
            params.get("source", ""),
            since,
            overdue,
            int(limit_text),
            params.get("continuationToken", ""),
        )
    except ValueError as exc:
        return _bad("continuationToken", str(exc))
    except ConfigurationError as exc:
        return refusal(exc)
    except StorageError as exc:
        return storage_answer(exc)
    shown = {k: v for k, v in params.items() if k in ("status", "source", "since", "overdue", "limit") and v}
    operator.noted(
        "list",
        actor(headers),
        " ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "all",
        f"{len(page.records)} found",
    )
    return Answer(
        200,
        {
            "requests": [r.summary() for r in page.records],
            "count": len(page.records),
            "continuationToken": page.next_token,
        },
    )


def _ticket(source: str, ticket: str) -> Answer | None:
    wrong = check_ticket(source, ticket)
    return answer("unknown", 400, TicketRef(source, ticket), wrong) if wrong else None


def show(runtime: Runtime, source: str, ticket: str, headers: Mapping[str, str]) -> Answer:
    """GET /api/operator/requests/{source}/{ticket}: the record with its history."""
    found = intake.recorded(runtime, source, ticket)
    if isinstance(found, Answer):
        if found.http_status == 404:
            operator.noted("show", actor(headers), f"{source}/{ticket}", "unknown")
        return found
    operator.noted("show", actor(headers), f"{source}/{ticket}", "found")
    return Answer(200, operator.detail(found))


def act(
    runtime: Runtime, action: str, source: str, ticket: str, headers: Mapping[str, str], what: str = "auto"
) -> Answer:
    """POST /api/operator/requests/{source}/{ticket}/replay (``?what=request|desk|auto``) or /erase."""
    wrong = _ticket(source, ticket)
    if wrong:
        return wrong
    if action == "replay" and what not in operator.WHAT:
        return answer(
            "unknown", 400, TicketRef(source, ticket), [FieldError("what", f"one of {', '.join(operator.WHAT)}")]
        )
    who = actor(headers)
    try:
        if action == "replay":
            record = operator.replay(runtime, source, ticket, who, what)
            return Answer(200, {"action": "replay", "request": operator.detail(record)})
        record, removed = operator.erase(runtime, source, ticket, who)
        return Answer(200, {"action": "erase", "erased": removed, "request": operator.detail(record)})
    except LookupError:
        return intake.not_recorded(source, ticket)
    except operator.Refused as exc:
        return answer("refused", 409, TicketRef(source, ticket), [FieldError("status", str(exc))])
    except ConfigurationError as exc:
        return refusal(exc)
    except StorageError as exc:
        return storage_answer(exc)
