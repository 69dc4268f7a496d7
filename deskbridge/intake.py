"""Intake: a desk's approval callback in, an answer out (and the status route).

The caller is checked (size, content type, signature, a replayed delivery),
the payload understood (parsed, mapped, e-mails looked up, validated against
the settings: every problem at once), everything the first attempt needs is
prepared (deskbridge.attempt.prepare), and only then is the request recorded:
``pending`` with the first call following, or ``queued`` when no token could
be had. The first insert for a ticket wins; every later copy is answered
from the ledger and never reaches Syskit Point.

A preflight (``?validate=true``) takes the same path up to and including the
understanding, checks every setting the approval would need, and answers
``valid`` with what the approval would send to Syskit Point, or every error:
it records nothing (no request, no delivery id), queues nothing, and calls
neither Syskit Point nor Entra ID for its token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deskbridge import attempt, jsonbody, telemetry
from deskbridge.answers import REFUSALS, Answer, answer, record_answer, refusal, storage_answer
from deskbridge.auth import HubSignature, StandardWebhook, has_header
from deskbridge.desks import Approval, Ignored, TicketRef, desk_of
from deskbridge.errors import JiraError, StorageError
from deskbridge.executor import Change
from deskbridge.ledger import LedgerRecord, StaleRecord, iso
from deskbridge.lifecycle import NEW, Event
from deskbridge.model import FieldError, InvalidRequest, ProvisioningRequest, Status, check_ticket, validate
from deskbridge.runtime import Runtime
from deskbridge.settings import ConfigurationError, Settings, check_all, check_storage

log = telemetry.logger("deskbridge")


@dataclass(frozen=True)
class Delivery:
    """A Standard Webhooks delivery id recorded for a signed call."""

    kind: str
    id: str
    repeat: bool  # seen before with the same body: a retry of a delivery whose handling may have died


class RefusedApproval(InvalidRequest):
    """An approval refused for what its ticket holds: the ticket is known, so it can be told why."""

    def __init__(self, refused: InvalidRequest, ticket: TicketRef, reply_to: dict[str, str]) -> None:
        super().__init__(refused.errors, refused.http_status)
        self.ticket = ticket
        self.reply_to = reply_to


@dataclass(frozen=True)
class Understood:
    """An approval as the bridge reads it: the ticket, the validated request, what the desk adapter said."""

    ticket: TicketRef
    request: ProvisioningRequest
    approval: Approval


def accept(
    runtime: Runtime, route: str, body: bytes, headers: Mapping[str, str], validate: str | None = None
) -> Answer:
    """A desk's approval callback (route: provision, jira or servicenow).

    ``validate``: the query parameter as sent; ``true`` makes it a preflight (see the module docstring).
    """
    clock = runtime.clock
    started = clock.monotonic()
    delivery: Delivery | None = None
    preflight = False
    try:
        preflight = _wants_preflight(validate)
        delivery = _check_caller(runtime, route, body, headers, record=not preflight)
        result = _preflight(runtime, route, body, headers) if preflight else _accept(runtime, route, body, headers,
                                                                                     delivery)
    except REFUSALS as exc:
        result = refusal(exc)
        if isinstance(exc, RefusedApproval) and not preflight:
            try:
                _tell_the_ticket(runtime, route, exc)
            except StorageError as lost:  # not recorded: a 503, so the desk sends it again and the note follows
                refused = result.body["errors"]
                result = storage_answer(lost)
                result.body["errors"] = refused + result.body["errors"]
    except StorageError as exc:
        result = storage_answer(exc)
    except Exception:
        if delivery:
            _forget(runtime, delivery)
        raise
    if delivery and result.http_status >= 500:
        _forget(runtime, delivery)  # let the sender's retry through
    ticket = result.body.get("ticket") or {}
    event = "preflight" if preflight else "approval"
    log.info(
        "%s %s %s %s",
        event,
        route,
        ticket.get("id", "-"),
        result.body["status"],
        extra={
            "bridge_event": event,
            "route": route,
            "source": ticket.get("source", route),
            "ticket": ticket.get("id", ""),
            "outcome": result.body["status"],
            "http_status": result.http_status,
            "point_status": result.log_fields.get("point_status", ""),
            "duration_ms": round((clock.monotonic() - started) * 1000, 1),
        },
    )
    return result


def _tell_the_ticket(runtime: Runtime, route: str, refused: RefusedApproval) -> None:
    """When write-back is configured, the desk's own ticket gets a note naming every problem, once per distinct
    refusal (deskbridge.writeback.owe_refusal): recorded and queued here, written by the desk-update function,
    so the answer never waits for the desk. Only on the desk's own route: /api/provision never writes.
    StorageError propagates: the note could not be recorded, and the caller answers 503 so the desk retries."""
    ticket = refused.ticket
    if route not in ("jira", "servicenow") or ticket.source != route or not ticket.id:
        return
    from deskbridge import writeback

    problems = [(e.field, e.message) for e in refused.errors]
    try:
        owed = writeback.owe_refusal(runtime, ticket.source, ticket.id, refused.reply_to, problems)
    except ConfigurationError as exc:  # a desk setting (already answered 503 elsewhere): the refusal stands
        log.error("could not note the refusal on %s/%s: %s", ticket.source, ticket.id, exc,
                  extra={"bridge_event": "config", "setting": exc.setting})
        return
    if owed:
        log.info("refusal of %s/%s queued as a note on the ticket", ticket.source, ticket.id,
                 extra={"bridge_event": "desk_update", "source": ticket.source, "ticket": ticket.id,
                        "outcome": "queued", "update": "refused"})


def status(runtime: Runtime, source: str, ticket: str) -> Answer:
    """The status route: the ledger record, without addresses or the body."""
    found = recorded(runtime, source, ticket)
    return found if isinstance(found, Answer) else Answer(200, found.summary())


def recorded(runtime: Runtime, source: str, ticket: str) -> LedgerRecord | Answer:
    """A ticket's ledger record (the status route, the operator routes), or the answer that says why there is
    none: a source or ticket id that could never have been recorded is a 400 naming it (the Table service would
    refuse such a key), a setting or storage that fails a 503, as on the approval routes, nothing recorded a 404."""
    wrong = check_ticket(source, ticket)
    if wrong:
        return answer("unknown", 400, TicketRef(source, ticket), wrong)
    try:
        record = runtime.ledger.get(source, ticket)
    except ConfigurationError as exc:
        return refusal(exc)
    except StorageError as exc:
        return storage_answer(exc)
    return record if record is not None else not_recorded(source, ticket)


def not_recorded(source: str, ticket: str) -> Answer:
    nothing = FieldError("ticket", "no request is recorded for this ticket")
    return answer("unknown", 404, TicketRef(source, ticket), [nothing])


# -- the caller ------------------------------------------------------------------------

# The signature scheme of each approval route (deskbridge.auth), built with the route's active secrets.
SCHEMES: dict[str, type[HubSignature | StandardWebhook]] = {
    "jira": HubSignature,
    "servicenow": StandardWebhook,
    "provision": StandardWebhook,
}


def _wants_preflight(validate: str | None) -> bool:
    """The ``validate`` query parameter: absent or false is an approval; anything unclear is refused, never
    taken for an approval (a check that provisioned would be the worst reading)."""
    if validate is None:
        return False
    text = validate.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidRequest([FieldError("validate", "must be true (check only: nothing is recorded or sent) or false")])


def _check_caller(
    runtime: Runtime, route: str, body: bytes, headers: Mapping[str, str], *, record: bool = True
) -> Delivery | None:
    """Size, content type and signature. ``record``: note a signed delivery's id (a preflight does not, so its
    id stays free for the approval, and a preflight can be sent again as often as the desk likes)."""
    s = runtime.settings
    if len(body) > s.max_body_bytes:
        raise InvalidRequest(
            [FieldError("body", f"is {len(body)} bytes; at most {s.max_body_bytes} are accepted")], http_status=413
        )
    jsonbody.check_content_type(headers)
    scheme = SCHEMES[route]
    names = s.signing_secret_names(route)
    required = s.signature_required(route)  # a route that requires a signature but names no secret: 503
    if not names or not (required or has_header(headers, scheme.header)):
        return None
    webhook_id = scheme(runtime.secrets.values(names)).verify(body, headers)
    if webhook_id is None or not record:  # no delivery id to check for a replay, or a preflight (nothing noted)
        return None
    fingerprint = hashlib.sha256(body).hexdigest()[:32]
    if runtime.deliveries.first_time(route, webhook_id, fingerprint):
        return Delivery(route, webhook_id, repeat=False)
    seen = runtime.deliveries.fingerprint(route, webhook_id)
    if seen is not None and seen != fingerprint:  # the id is spent, whatever body it is signed for now
        raise _replayed()
    return Delivery(route, webhook_id, repeat=seen is not None)


def _replayed() -> InvalidRequest:
    return InvalidRequest([FieldError("webhook-id", "this delivery was already received (replay)")], 409)


def _forget(runtime: Runtime, delivery: Delivery) -> None:
    try:
        runtime.deliveries.forget(delivery.kind, delivery.id)
    except Exception:  # best effort: a repeat with the same body is let through anyway when nothing was recorded
        log.warning("could not forget delivery %s", delivery.kind)


# -- the approval ----------------------------------------------------------------------


def _understand(
    runtime: Runtime, route: str, body: bytes, headers: Mapping[str, str], *, preflight: bool
) -> Understood | Ignored:
    """Parse, map, look up hidden e-mails, validate: the request, or InvalidRequest naming every problem.

    ``preflight``: a Jira issue is mapped as if it were approved (nothing else differs)."""
    payload = jsonbody.parse(body)
    approval = _approval(runtime, route, payload, headers, preflight=preflight)
    if isinstance(approval, Ignored):
        return approval
    problems = list(approval.problems)
    if approval.missing:
        problems += _resolve_emails(runtime, approval)
    try:
        request = validate(approval.draft, attempt.policy_from(runtime))
    except InvalidRequest as invalid:
        # A field the mapping already named is not named again (an owner whose e-mail is hidden is not also
        # "at least one owner is required").
        more = invalid.beyond([e for p in problems for e in p.errors])
        problems += [InvalidRequest(more, invalid.http_status)] if more else []
        raise RefusedApproval(InvalidRequest.joined(problems), approval.ticket, dict(approval.reply_to)) from None
    if problems:
        raise RefusedApproval(InvalidRequest.joined(problems), approval.ticket, dict(approval.reply_to))
    ticket = approval.ticket
    if not ticket.id:
        from deskbridge.desks.generic import body_ticket_id

        ticket = TicketRef(ticket.source, body_ticket_id(request))
    if route == "provision":
        approval.warnings.extend(_unwritten_desk(runtime.settings, ticket, approval))
    return Understood(ticket, request, approval)


def _unwritten_desk(s: Settings, ticket: TicketRef, approval: Approval) -> list[str]:
    """Why a desk ticket named through /api/provision will not hear its outcome, said in the answer (and kept on
    the record): a drop-in rule that used to see its outcome on the issue learns what to set."""
    desk, _ = desk_of(ticket.source, approval.reply_to)
    if not desk:
        return []
    if desk not in s.provision_desk_writeback:
        return [f"the outcome is not written to {desk}: PROVISION_DESK_WRITEBACK does not name {desk}"]
    if desk == "jira" and not s.jira_project_allowed(ticket.id):
        return ["the outcome is not written to jira: the issue's project is not in JIRA_PROJECT_KEYS"]
    if desk == "servicenow" and not approval.reply_to.get("sysId"):
        return ["the outcome is not written to servicenow: ticket.sysId (the item's sys_id) is not given"]
    return []


def _accept(
    runtime: Runtime, route: str, body: bytes, headers: Mapping[str, str], delivery: Delivery | None
) -> Answer:
    understood = _understand(runtime, route, body, headers, preflight=False)
    if isinstance(understood, Ignored):
        return answer(Status.IGNORED, 200, reason=understood.reason)
    ticket = understood.ticket
    ready = attempt.prepare(runtime)  # a bad setting fails here, before anything is written
    if delivery is not None and delivery.repeat:
        recorded = runtime.ledger.get(ticket.source, ticket.id)
        if recorded is not None and recorded.body_hash == _body_hash(understood.request):
            raise _replayed()  # the same delivery again, and it was handled: a replay
        # Not handled yet (the worker died after the id was recorded): a correction of a refused ticket
        # must still reach its resubmission, so it goes on like any approval (a copy is a duplicate there).
    return _submit(runtime, ticket, understood.request, understood.approval, ready)


# -- the preflight ---------------------------------------------------------------------


def _preflight(runtime: Runtime, route: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    """What an approval of this body would send to Syskit Point, or every reason it would not."""
    problems = _setting_problems(runtime, route)
    if problems:
        for problem in problems:
            log.error("configuration problem: %s", problem, extra={"bridge_event": "config",
                                                                   "setting": problem.setting})
        return answer(Status.FAILED, 503, errors=[FieldError(p.setting, f"setting {p.problem}") for p in problems])
    understood = _understand(runtime, route, body, headers, preflight=True)
    if isinstance(understood, Ignored):  # no adapter ignores a preflight today; kept honest if one does
        return answer(Status.IGNORED, 200, reason=understood.reason)
    approval = understood.approval
    result = answer("valid", 200, understood.ticket, point=_point_call(understood.request, approval))
    result.body["warnings"] = list(approval.warnings) + [
        f"{u.role}: {u.display_name or u.account_id} has no e-mail address on the issue; the bridge found it in "
        "Jira and an approval sends it (not shown here)"
        for u in approval.looked_up.values()
    ]
    return result


def _setting_problems(runtime: Runtime, route: str) -> list[ConfigurationError]:
    """Every setting the approval path reads after the caller check that is missing or malformed, each once:
    validation's limits, the ledger, the mapping (JIRA_POST_FUNCTION_MATCH), and what the first attempt and
    its outcome need (templates and the default type among them: deskbridge.attempt.setting_groups)."""
    s = runtime.settings
    also = [lambda: check_storage(s), lambda: s.ledger_table]
    if route == "jira":
        also.append(lambda: s.jira_post_function_match)
    if route == "provision":
        also += [lambda: s.callback_policy, lambda: s.callback_signing_secret_names]
    return check_all(s, ("limits", *attempt.setting_groups(s)), also)


def _point_call(request: ProvisioningRequest, approval: Approval) -> dict[str, Any]:
    """The call an approval makes: method, path and body, with the addresses the bridge looked up itself masked
    (the caller had them hidden; a check must not show what Jira's profile visibility hides)."""
    body = request.point_body()
    for role in ("owners", "members"):
        body[role] = [
            f"(hidden: the e-mail of {found.display_name or found.account_id}, looked up in Jira)"
            if (found := approval.looked_up.get(address.casefold())) else address
            for address in body[role]
        ]
    return {"method": "POST", "path": request.point_path, "body": body}


def _body_hash(request: ProvisioningRequest) -> str:
    return hashlib.sha256(request.canonical_json().encode("utf-8")).hexdigest()


def _new_record(ticket: TicketRef, request: ProvisioningRequest, approval: Approval) -> LedgerRecord:
    return LedgerRecord(
        source=ticket.source,
        ticket=ticket.id,
        status=NEW,
        workspace_type=request.workspace_type,
        display_name=request.display_name,
        name_key=request.name_key,
        desired_url=request.desired_url,
        template_id=request.template_id,
        owner_count=len(request.owners),
        member_count=len(request.members),
        body=json.dumps(request.point_body(), ensure_ascii=False),
        body_hash=_body_hash(request),
        reply_to=dict(approval.reply_to),
        warnings=list(approval.warnings),
    )


def _first_change(runtime: Runtime, record: LedgerRecord, ready: attempt.Ready, event: Event) -> Change:
    if ready.token_error is not None:
        return attempt.not_ready(runtime, record, ready.token_error)
    return Change(event)


def _submit(
    runtime: Runtime, ticket: TicketRef, request: ProvisioningRequest, approval: Approval, ready: attempt.Ready
) -> Answer:
    ledger = runtime.ledger
    for _ in range(3):  # a record deleted by an operator meanwhile: start again
        record = _new_record(ticket, request, approval)
        settled = attempt.run(runtime, record, _first_change(runtime, record, ready, Event.ACCEPTED), ready, request)
        if settled is None:  # recorded already
            existing = ledger.get(ticket.source, ticket.id)
            if existing is None:
                continue
            if existing.status != Status.REJECTED or existing.body_hash == record.body_hash:
                return _duplicate(runtime, existing)
            # The ticket was corrected after Syskit Point refused it: try the new content.
            corrected = _new_record(ticket, request, approval)
            for kept in ("status", "created_at", "etag", "attempts", "sends", "history", "events", "desk_owed"):
                setattr(corrected, kept, getattr(existing, kept))
            corrected.replay_base = corrected.attempts  # the retry schedule starts again for the new content
            corrected.replayed_at = iso(runtime.clock.now())
            try:
                settled = attempt.run(
                    runtime, corrected, _first_change(runtime, corrected, ready, Event.RESUBMITTED), ready, request,
                    strict_first=True,
                )
            except StaleRecord:
                return _duplicate(runtime, ledger.get(ticket.source, ticket.id) or existing)
            if settled is None:
                continue
        result = record_answer(settled, 201 if settled.status == Status.SUBMITTED else None)
        result.log_fields["point_status"] = settled.point_status or ""
        return result
    raise StaleRecord(f"{ticket.source}/{ticket.id}: recorded and deleted again while handled")


def _duplicate(runtime: Runtime, record: LedgerRecord) -> Answer:
    """The same ticket again: the recorded outcome, never a second call."""
    clock = runtime.clock
    deadline = clock.monotonic() + runtime.settings.point_retry_budget
    while record.status == Status.PENDING and clock.monotonic() < deadline:
        clock.sleep(0.05)
        record = runtime.ledger.get(record.source, record.ticket) or record
    result = record_answer(record)
    result.body["duplicate"] = True
    return result


def _jira_approval(s: Settings, payload: Any, headers: Mapping[str, str], preflight: bool) -> Approval | Ignored:
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
        preflight=preflight,
    )


def _servicenow_approval(
    s: Settings, payload: Any, headers: Mapping[str, str], preflight: bool
) -> Approval | Ignored:
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


def _generic_approval(s: Settings, payload: Any, headers: Mapping[str, str], preflight: bool) -> Approval | Ignored:
    from deskbridge.desks.generic import parse

    key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
    s.callback_signing_secret_names  # noqa: B018 - a malformed setting is a 503 now, not a callback failing later
    return parse(payload, key, s.callback_policy)


# The payload parser of each approval route (deskbridge.desks), with the settings that name its fields.
PARSERS: dict[str, Callable[[Settings, Any, Mapping[str, str], bool], Approval | Ignored]] = {
    "jira": _jira_approval,
    "servicenow": _servicenow_approval,
    "provision": _generic_approval,
}


def _approval(
    runtime: Runtime, route: str, payload: Any, headers: Mapping[str, str], *, preflight: bool = False
) -> Approval | Ignored:
    s = runtime.settings
    # The desk's own URL, when set, must be https (the write-back sends its credentials there): a 503 now, not a
    # write-back that fails later.
    if route == "jira" and s.raw("JIRA_URL"):
        s.jira_url  # noqa: B018 - read to check
    if route == "servicenow" and s.raw("SERVICENOW_URL"):
        s.servicenow_url  # noqa: B018 - read to check
    return PARSERS[route](s, payload, headers, preflight)


def _resolve_emails(runtime: Runtime, approval: Approval) -> list[InvalidRequest]:
    """Ask Jira for users whose e-mail the payload lacked; a 422 problem if an owner stays unknown."""
    jira = runtime.jira
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
            approval.looked_up[email.casefold()] = user
        else:
            still_missing.append(user)
    owners = [u for u in still_missing if u.role == "owners"]
    left_out = [u for u in still_missing if u.role == "members"]
    if left_out:
        # Kept on the record, which the status route shows: how many, never who (the log names them).
        log.warning(
            "members left out of %s for lack of a visible e-mail address: %s",
            approval.ticket.id,
            "; ".join(f"{u.display_name or '?'} (accountId {u.account_id or '?'})" for u in left_out),
            extra={"bridge_event": "approval", "source": approval.ticket.source, "ticket": approval.ticket.id},
        )
        approval.warnings.append(
            f"{len(left_out)} member(s) named on the issue have no visible e-mail address and were left out; "
            "the bridge's log names them"
        )
    if not owners:
        return []
    names = "; ".join(f"{u.display_name or '?'} (accountId {u.account_id or '?'})" for u in owners)
    hint = "" if jira else " (set JIRA_URL, JIRA_EMAIL and JIRA_API_TOKEN_SECRET_NAME to look them up)"
    return [
        InvalidRequest(
            [
                FieldError(
                    "owners",
                    f"no e-mail address visible for: {names}; make the e-mail visible in the "
                    f"Atlassian profile or pick another owner{hint}",
                )
            ],
            http_status=422,
        )
    ]
