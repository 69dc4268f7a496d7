"""Desk write-back: an outcome the ticket is owed, written to Jira, ServiceNow or a callback exactly once.

Delivery is at least once, with a check before writing again:

- When a transition owes the ticket an update, the record says so in the
  same ledger write (``desk_owed``: the update, its attempt token, when it
  is due); the message to the desk-updates queue is sent after that write.
  A lost message is queued again by the reconciler.
- Each step (a Jira comment, a Jira transition, a ServiceNow work note, a
  callback) carries a marker of the bridge's step; it is marked done in the
  ledger after it is written. A try that may follow an unclear write (a
  redelivered message, a retry after a failure, a reconciler re-queue) first
  looks for the marker at the desk, and only writes when it is not there. A
  callback has no lookup: every try carries the same ``webhook-id``, so the
  receiver drops copies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from deskbridge import telemetry
from deskbridge.auth import sign_standard_webhook
from deskbridge.desks import desk_of, marker_line, step_marker
from deskbridge.errors import RemoteError, SecretUnavailable
from deskbridge.ledger import AWAITING_OUTCOME, LedgerRecord, iso, parse_iso
from deskbridge.model import Status
from deskbridge.retries import QueueKey, new_token, next_delay, scheduled_age
from deskbridge.runtime import Runtime
from deskbridge.settings import ConfigurationError, Settings

log = telemetry.logger("deskbridge.writeback")

_FAILURES = (Status.FAILED_IN_POINT, Status.REJECTED, Status.FAILED)
OVERDUE = "overdue"  # the note "still provisioning, no word from Syskit Point yet" (not a status)


def round_label(record: LedgerRecord, update: str) -> str:
    """The update's name in step names and markers: ``completed``, or ``completed#2`` in the second round of
    attempts after a replay of a point_failed request (that round's notes are new ones)."""
    return f"{update}#{record.outcome_round}" if record.outcome_round else update


def jira_issue(record: LedgerRecord) -> str:
    """The Jira issue a record's outcome goes to (the key the route noted, else the ticket)."""
    return record.reply_to.get("issueKey") or record.ticket


def desk_targets(settings: Settings, record: LedgerRecord) -> list[str]:
    """Where this request's outcome can be written: jira, servicenow, callback.

    A desk is written only from a record of its own route, or from a /api/provision record when
    PROVISION_DESK_WRITEBACK names the desk; Jira only in the projects JIRA_PROJECT_KEYS lists (when set)."""
    targets = []
    desk, route = desk_of(record.source, record.reply_to)
    allowed = route == desk or desk in settings.provision_desk_writeback
    if desk == "jira" and allowed and settings.jira_configured:
        if settings.jira_project_allowed(jira_issue(record)):
            targets.append("jira")
        else:
            log.warning(
                "the outcome of %s/%s is not written to Jira: its project is not in JIRA_PROJECT_KEYS",
                record.source, record.ticket,
                extra={"bridge_event": "desk_update", "source": record.source, "ticket": record.ticket,
                       "outcome": "not_allowed"},
            )
    if desk == "servicenow" and allowed and record.reply_to.get("sysId") and settings.servicenow_configured:
        targets.append("servicenow")
    if record.reply_to.get("callbackUrl"):
        targets.append("callback")
    return targets


# -- owing and queueing ------------------------------------------------------------------


def owe(runtime: Runtime, record: LedgerRecord, update: str, now: datetime) -> bool:
    """Note on ``record`` (written by the caller) that its ticket is owed ``update``; False: no desk to tell."""
    if not desk_targets(runtime.settings, record):
        return False
    record.desk_owed = {**record.desk_owed, update: {"token": new_token(), "due": iso(now)}}
    return True


def send(runtime: Runtime, record: LedgerRecord, update: str, *, check: bool = False, delay: int = 0) -> bool:
    """The message for an owed update, after the record saying so was written; False when not sent."""
    owed = record.desk_owed.get(update)
    if not owed:
        return False
    try:
        runtime.desk_queue.schedule(QueueKey(record.source, record.ticket, update, owed["token"], check), delay)
    except Exception as exc:  # the record still owes it: the reconciler queues it again
        log.error(
            "could not queue the desk update %s for %s/%s: %s; the reconciler will",
            update,
            record.source,
            record.ticket,
            type(exc).__name__,
            extra={"bridge_event": "desk_update", "source": record.source, "ticket": record.ticket,
                   "outcome": "not_queued", "update": update},
        )
        return False
    return True


def requeue(runtime: Runtime, source: str, ticket: str, update: str, lost_before: datetime) -> bool:
    """The reconciler: an owed update overdue since before ``lost_before`` gets a new token and message."""
    moved: list[LedgerRecord] = []

    def renew(latest: LedgerRecord) -> LedgerRecord | None:
        moved.clear()
        owed = latest.desk_owed.get(update)
        due = parse_iso(owed.get("due", "")) if owed else None
        if owed is None or (due is not None and due >= lost_before):
            return None
        latest.desk_owed = {**latest.desk_owed, update: {"token": new_token(), "due": iso(runtime.clock.now())}}
        moved.append(latest)
        return latest

    record = runtime.ledger.change(source, ticket, renew)
    if record is None or not moved:
        return False
    return send(runtime, record, update, check=True)


def given_up(record: LedgerRecord) -> list[str]:
    """The updates whose write-back was given up (the desk refused, or stayed down past the schedule)."""
    found = []
    for mark in record.desk_updates:
        update, _, what = mark.partition(":")
        if what == "gave-up" and update not in found:
            found.append(update)
    return found


def redrive(runtime: Runtime, source: str, ticket: str) -> list[str]:
    """An operator's replay of the updates given up: owed again (a new token, due now), then queued with a look
    at the desk first (a try that failed may have written). Returns the updates; [] when none was given up."""
    again: list[str] = []

    def owe_again(latest: LedgerRecord) -> LedgerRecord | None:
        again[:] = [u for u in given_up(latest) if u not in latest.desk_owed]
        if not again:
            return None
        # Its schedule starts again: the note that it gave up and its count of failed tries go.
        gone = tuple(f"{u}:gave-up" for u in again)
        counted = tuple(f"{u}:attempts=" for u in again)
        latest.desk_updates = [m for m in latest.desk_updates if m not in gone and not m.startswith(counted)]
        due = iso(runtime.clock.now())
        latest.desk_owed = {**latest.desk_owed, **{u: {"token": new_token(), "due": due} for u in again}}
        return latest

    record = runtime.ledger.change(source, ticket, owe_again)
    if record is None or not again:
        return []
    for update in again:
        send(runtime, record, update, check=True)
    return list(again)


# -- refusals at intake ------------------------------------------------------------------------

REFUSED = "refused"  # an approval refused at intake: the update of a note is "refused:<its fingerprint>"
_NOTES = "refusal-note"  # the kind of row in the deliveries table that holds such a note until written


def refusal_text(problems: list[tuple[str, str]]) -> str:
    """The note: every problem the bridge found, and what to do."""
    lines = "\n".join(f"- {name}: {message}" for name, message in problems)
    return (
        "Point Desk Bridge could not send this approval to Syskit Point:\n"
        f"{lines}\n"
        "Correct the ticket, then approve it again."
    )


def owe_refusal(
    runtime: Runtime, source: str, ticket: str, reply_to: dict[str, str], problems: list[tuple[str, str]]
) -> bool:
    """Note on the ticket why its approval was refused, once per distinct refusal: recorded (the deliveries
    table), then queued; the desk-update function writes it, looking first after an unclear try, and the
    reconciler queues it again when the message was lost. False when there is no desk to tell, or this very
    refusal was noted before."""
    import hashlib

    reply_to = {k: v for k, v in reply_to.items() if k != "callbackUrl"}  # the desk's own ticket only
    if not desk_targets(runtime.settings, LedgerRecord(source, ticket, Status.REJECTED, reply_to=reply_to)):
        return False
    canonical = json.dumps(sorted(problems), separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{source}\n{ticket}\n{canonical}".encode()).hexdigest()[:24]
    update = f"{REFUSED}:{fingerprint}"
    data = {"source": source, "ticket": ticket, "update": update, "replyTo": dict(reply_to),
            "text": refusal_text(problems)}
    if not runtime.deliveries.owe_note(_NOTES, f"{source}/{ticket}/{fingerprint}", data):
        return False
    _queue_refusal(runtime, data)
    return True


def _queue_refusal(runtime: Runtime, data: dict[str, object], check: bool = False) -> None:
    key = QueueKey(str(data["source"]), str(data["ticket"]), str(data["update"]), str(data["update"]), check)
    try:
        runtime.desk_queue.schedule(key, 0)
    except Exception as exc:  # recorded as owed: the reconciler queues it again
        log.error("could not queue the refusal note for %s/%s: %s; the reconciler will", key.source, key.ticket,
                  type(exc).__name__, extra={"bridge_event": "desk_update", "source": key.source,
                                             "ticket": key.ticket, "outcome": "not_queued", "update": REFUSED})


def requeue_refusals(runtime: Runtime, lost_before: datetime) -> int:
    """The reconciler: refusal notes still owed since before ``lost_before`` are queued again, with a look first."""
    owed = runtime.deliveries.notes_overdue(_NOTES, lost_before)
    for data in owed:
        _queue_refusal(runtime, data, check=True)
    return len(owed)


def _note_id(key: QueueKey) -> str:
    return f"{key.source}/{key.ticket}/{key.update.partition(':')[2]}"


def _refusal_note(runtime: Runtime, key: QueueKey, dequeue_count: int) -> str:
    """Write one refusal note (failures propagate: the host delivers the message again, then poisons it)."""
    data = runtime.deliveries.owed_note(_NOTES, _note_id(key))
    if data is None:
        _log(key, "superseded", "refusal note for %s/%s: written or given up already", key.source, key.ticket)
        return "superseded"
    record = LedgerRecord(key.source, key.ticket, Status.REJECTED, reply_to=dict(data.get("replyTo") or {}))
    check = key.check or dequeue_count > 1
    for step in _steps(runtime, record, key.update, str(data.get("text") or "")):
        if check and step.written is not None and step.written():
            continue
        step.write()
    runtime.deliveries.settle_note(_NOTES, _note_id(key), "written")
    _log(key, "written", "refusal note written for %s/%s", key.source, key.ticket)
    return "written"


# -- the desk-updates queue ----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str  # "completed:jira-comment"
    write: Callable[[], None]
    written: Callable[[], bool] | None  # looks for the marker at the desk; None: the desk drops copies itself


def desk_update(runtime: Runtime, message: str, dequeue_count: int = 1) -> str:
    """Write one owed outcome to its desk, each step exactly once. Returns what happened."""
    try:
        key = QueueKey.decode(message)
    except ValueError:
        log.error("dropped a malformed desk-update message")
        return "malformed"
    if key.update.startswith(f"{REFUSED}:"):
        return _refusal_note(runtime, key, dequeue_count)
    record = runtime.ledger.get(key.source, key.ticket)
    if record is None or not key.update:
        return "unknown"
    owed = record.desk_owed.get(key.update)
    if key.token and (owed is None or owed.get("token") != key.token):
        why = "written or given up already" if owed is None else "a newer message replaced it"
        _log(key, "superseded", "desk update %s for %s/%s dropped: %s", key.update, key.source, key.ticket, why)
        return "superseded"
    if key.update == OVERDUE and record.status not in AWAITING_OUTCOME:
        # The outcome came before the note "still no word" was written: the note would only confuse.
        _settle_owed(runtime, key, f"{key.update}:superseded")
        _log(key, "superseded", "desk update %s for %s/%s skipped: the request is %s now", key.update,
             key.source, key.ticket, record.status)
        return "superseded"
    if key.update == Status.PROVISIONING and record.status != Status.PROVISIONING:
        # The outcome arrived first (queue messages run in any order): "started" would only confuse.
        _settle_owed(runtime, key, f"{key.update}:superseded")
        _log(key, "superseded", "desk update %s for %s/%s skipped: the request is %s now", key.update,
             key.source, key.ticket, record.status)
        return "superseded"
    check = key.check or dequeue_count > 1  # an earlier try may have written without marking it
    steps = _steps(runtime, record, key.update)
    todo = [step for step in steps if step.name not in record.desk_updates]
    for n, step in enumerate(todo):
        found = False
        try:
            if check and step.written is not None:
                found = step.written()
            if not found:
                step.write()
        except Exception as exc:
            return _desk_failure(runtime, key, record, step.name, exc)
        _mark(runtime, key, step.name, last=n == len(todo) - 1)
        if found:
            _log(key, "found", "desk update step %s for %s/%s was written before; not written again", step.name,
                 key.source, key.ticket)
    if not todo:
        _settle_owed(runtime, key, "")
    _log(key, "written", "desk update %s written for %s/%s", key.update, key.source, key.ticket)
    return "written"


def poisoned(runtime: Runtime, message: str) -> str:
    """The host gave up on a desk-update message: the update is given up too (the alert says so)."""
    try:
        key = QueueKey.decode(message)
    except ValueError:
        key = None
    # The workbook and the alert group by source and ticket: a malformed message has neither.
    dimensions = {"source": key.source, "ticket": key.ticket, "update": key.update} if key else {}
    log.error(
        "desk update given up: %s",
        message[:300],
        extra={"bridge_event": "poisoned", "outcome": "desk_update_failed", **dimensions},
    )
    if key is None or not key.update:
        return "malformed"
    if key.update.startswith(f"{REFUSED}:"):
        runtime.deliveries.settle_note(_NOTES, _note_id(key), "gave-up")
        return "failed"
    _settle_owed(runtime, key, f"{key.update}:gave-up", only_token=key.token)
    return "failed"


def _log(key: QueueKey, outcome: str, message: str, *args: object) -> None:
    log.info(message, *args, extra={"bridge_event": "desk_update", "source": key.source, "ticket": key.ticket,
                                    "outcome": outcome, "update": key.update})


def _drop_owed(latest: LedgerRecord, update: str, note: str = "") -> None:
    """The update is owed no longer; ``note`` (why, when not written) is kept beside the steps."""
    latest.desk_owed = {u: o for u, o in latest.desk_owed.items() if u != update}
    if note and note not in latest.desk_updates:
        latest.desk_updates = [*latest.desk_updates, note]


def _mark(runtime: Runtime, key: QueueKey, step: str, *, last: bool) -> LedgerRecord | None:
    """Step done (and, after the last one, the update no longer owed), in one write."""

    def mark(latest: LedgerRecord) -> LedgerRecord | None:
        done = step in latest.desk_updates
        if done and not (last and key.update in latest.desk_owed):
            return None
        if not done:
            latest.desk_updates = [*latest.desk_updates, step]
        if last:
            _drop_owed(latest, key.update)
        return latest

    return runtime.ledger.change(key.source, key.ticket, mark)


def _settle_owed(runtime: Runtime, key: QueueKey, note: str, only_token: str = "") -> None:
    """The update is owed no longer (written, superseded or given up); ``note`` is kept beside the steps."""

    def settle(latest: LedgerRecord) -> LedgerRecord | None:
        owed = latest.desk_owed.get(key.update)
        if owed is None or (only_token and owed.get("token") != only_token):
            return None
        _drop_owed(latest, key.update, note)
        return latest

    runtime.ledger.change(key.source, key.ticket, settle)


# -- what each desk gets ------------------------------------------------------------------


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
    if update == OVERDUE:
        return (
            f'The {kind} "{name}" is still being provisioned: no word from Syskit Point yet. '
            "An operator has been alerted."
        )
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


def _steps(runtime: Runtime, record: LedgerRecord, update: str, text: str = "") -> list[Step]:
    """The writes of one update, in order (``text``: the note, when it is not the outcome's)."""
    s = runtime.settings
    text = text or outcome_text(record, update)
    steps: list[Step] = []
    targets = desk_targets(s, record)

    label = round_label(record, update)

    def marker(step: str) -> str:
        return step_marker(record.source, record.ticket, label, step)

    if "jira" in targets:
        issue = jira_issue(record)
        name = f"{label}:jira-comment"
        comment_marker = marker(name)
        steps.append(Step(
            name,
            lambda: runtime.jira.comment(issue, text, s.jira_internal_note, comment_marker),
            lambda: runtime.jira.has_comment(issue, comment_marker),
        ))
        transition = _by_outcome(s, update, "JIRA_TRANSITION_COMPLETED", "JIRA_TRANSITION_FAILED")
        if transition:
            name = f"{label}:jira-transition"
            transition_marker = marker(name)

            def move() -> None:
                if not runtime.jira.transition(issue, transition, transition_marker):
                    log.warning("Jira issue %s offers no transition named %r now", issue, transition)

            steps.append(Step(name, move, lambda: runtime.jira.has_transitioned(issue, transition_marker)))
    if "servicenow" in targets:
        name = f"{label}:servicenow"
        note_marker = marker(name)
        fields = {"work_notes": f"{text}\n\n{marker_line(note_marker)}"}
        state = _by_outcome(s, update, "SERVICENOW_STATE_COMPLETED", "SERVICENOW_STATE_FAILED")
        if state:
            fields["state"] = state
        sys_id = record.reply_to["sysId"]
        steps.append(Step(
            name,
            lambda: runtime.servicenow.update_item(sys_id, fields),
            lambda: runtime.servicenow.has_work_note(sys_id, note_marker),
        ))
    if "callback" in targets:
        steps.append(Step(f"{label}:callback", lambda: send_callback(runtime, record, update, text), None))
    return steps


def _by_outcome(s: Settings, update: str, completed: str, failed: str) -> str:
    """The setting ``completed`` or ``failed`` names, as the update asks; "" for an update that moves nothing."""
    if update == Status.COMPLETED:
        return s.raw(completed)
    return s.raw(failed) if update in _FAILURES else ""


def callback_id(record: LedgerRecord, update: str) -> str:
    """The webhook-id of an outcome: the same on every try, so the receiver can drop copies."""
    label = round_label(record, update)
    return f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{record.source}/{record.ticket}/{label}').hex}"


def send_callback(runtime: Runtime, record: LedgerRecord, update: str, text: str) -> None:
    """POST the outcome to the caller's ticket.callbackUrl, signed with Standard Webhooks by the callback secret(s)
    (BRIDGE_CALLBACK_SIGNING_SECRET_NAME), never by an inbound route's secret: a captured callback must not
    verify as a call to /api/provision. Unset: the callback is sent unsigned (the receiver can still drop copies
    by webhook-id); doctor says so when /api/provision itself is signed."""
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
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    message_id = callback_id(record, update)
    headers = {"Content-Type": "application/json", "webhook-id": message_id}
    names = runtime.settings.callback_signing_secret_names
    if names:  # signed with every active secret
        moment = int(runtime.clock.now().timestamp())
        headers |= sign_standard_webhook(data, runtime.secrets.values(names), message_id, moment)
    runtime.callbacks.post(record.reply_to["callbackUrl"], data, headers)


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
    # A remote service says whether trying again may help; anything else (a bug, a setting) is tried again too.
    transient = exc.transient if isinstance(exc, RemoteError) else True
    status = exc.http_status if isinstance(exc, RemoteError) else None
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
    again = transient and delay is not None
    now = runtime.clock.now()

    def count(latest: LedgerRecord) -> LedgerRecord:
        kept = [mark for mark in latest.desk_updates if not mark.startswith(attempts_key)]
        latest.desk_updates = [*kept, f"{attempts_key}{failed_attempts(latest, key.update) + 1}"]
        owed = latest.desk_owed.get(key.update)
        if owed is not None and again:
            latest.desk_owed = {**latest.desk_owed, key.update: {**owed, "due": iso(now + timedelta(seconds=delay))}}
        elif owed is not None:
            _drop_owed(latest, key.update, f"{key.update}:gave-up")
        return latest

    latest = runtime.ledger.change(key.source, key.ticket, count) or record
    if again:
        log.warning(
            "desk update %s for %s/%s failed (%s); next try in %d s",
            step,
            key.source,
            key.ticket,
            reason,
            delay,
            extra={"bridge_event": "desk_update", "source": key.source, "ticket": key.ticket, "outcome": "queued"},
        )
        # The failed write may have reached the desk after all: the next try looks before writing.
        owed = latest.desk_owed.get(key.update)
        retried = QueueKey(key.source, key.ticket, key.update, owed["token"] if owed else key.token, True)
        runtime.desk_queue.schedule(retried, delay)
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
