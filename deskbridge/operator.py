"""Operator actions, one implementation for the CLI (``python -m deskbridge list|replay|erase``) and the
operator routes (``/api/operator/requests...``, admin level: deskbridge.handlers).

- :func:`find`: records by status, source, creation time and overdue, a page at a time;
- :func:`detail`: one record with its history;
- :func:`replay` of the request: a new attempt token and one message for an attempt now, and the retry
  schedule started again; any message still waiting for it (a delayed retry) carries the old token and is
  dropped when it comes. It takes failed, uncertain, queued and rejected requests (a person decided),
  point_failed ones (a new attempt, recorded as such: the next outcome is a new round of ticket updates),
  and a pending one only when its worker is surely gone;
- :func:`replay` of the desk updates: what the write-back gave up (the desk refused, or stayed down until
  the host poisoned the message) is owed again, and its new try looks at the desk before writing.
  ``what``: ``request``, ``desk``, or ``auto``: the desk updates when some were given up and the request
  is not one a new attempt is meant for (it went through, or Syskit Point failed it: its note is what the
  ticket missed), the request otherwise;
- :func:`erase`: the people in one record's body removed at once (deskbridge.retention), as the reconciler
  does after BRIDGE_RECORD_RETENTION_DAYS.

Every action is logged once, as a structured line (``bridge_event`` ``operator``) naming who asked and
what changed; the workbook counts them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deskbridge import outcomes, retention, telemetry
from deskbridge.executor import Change, in_ledger
from deskbridge.ledger import LedgerRecord, iso
from deskbridge.lifecycle import Event, allowed
from deskbridge.model import Status
from deskbridge.runtime import Runtime
from deskbridge.worker import settle_stale, stale

log = telemetry.logger("deskbridge")

STORED = tuple(s.value for s in Status if s != Status.IGNORED)
PAGE_MAX = 200


class Refused(ValueError):
    """The action does not apply to this record as it is (the message says why and what to do)."""


@dataclass(frozen=True)
class Page:
    records: list[LedgerRecord]
    next_token: str | None  # give it back to continue; None: nothing more


def encode_token(after: tuple[str, str] | None) -> str | None:
    if after is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(list(after), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str]:
    """ValueError when it is not a token :func:`encode_token` made."""
    try:
        after = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise ValueError("not a continuation token this bridge gave") from None
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(k, str) for k in after)):
        raise ValueError("not a continuation token this bridge gave")
    return after[0], after[1]


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it names its zone); ValueError naming the form (CLI and route)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("since must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def find(
    runtime: Runtime,
    statuses: tuple[str, ...] | None = None,
    source: str = "",
    since: datetime | None = None,
    overdue: bool = False,
    limit: int | None = None,
    token: str = "",
) -> Page:
    """Records matching every filter (statuses, source, created since, overdue), by source and ticket."""
    unknown = [s for s in statuses or () if s not in STORED]
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r}; one of {', '.join(STORED)}")
    before = None
    now = runtime.clock.now()
    if overdue:  # the Table service narrows by status and creation time; outcomes.is_overdue decides
        before = now - timedelta(seconds=runtime.settings.outcome_overdue)
        open_ones = tuple(str(s) for s in outcomes.OVERDUE_STATUSES)
        statuses = tuple(s for s in statuses if s in open_ones) if statuses else open_ones
        if not statuses:
            return Page([], None)
    after = decode_token(token) if token else None
    records, last = runtime.ledger.find(statuses, source, since, before, after, limit)
    if overdue:
        records = [record for record in records if outcomes.is_overdue(runtime, record, now)]
    return Page(records, encode_token(last))


def detail(record: LedgerRecord) -> dict[str, Any]:
    """What the status route shows, and what an operator needs besides: the history, the desk updates."""
    shown = record.summary()
    shown.update(
        {
            "history": list(record.history),
            "deskUpdatesWritten": list(record.desk_updates),
            "deskUpdatesOwed": sorted(record.desk_owed),
            "sends": record.sends,
            "replayedAt": record.replayed_at or None,
            "erasedAt": record.erased_at or None,
            "shape": record.shape,
        }
    )
    return shown


def _logged(action: str, actor: str, source: str, ticket: str, changed: str, outcome: str) -> None:
    log.warning(
        "operator %s %s/%s by %s: %s",
        action,
        source,
        ticket,
        actor,
        changed,
        extra={
            "bridge_event": "operator",
            "action": action,
            "actor": actor,
            "source": source,
            "ticket": ticket,
            "changed": changed,
            "outcome": outcome,
        },
    )


def noted(action: str, actor: str, what: str, outcome: str = "ok") -> None:
    """A read (a list, with its filters, or a show, with its ticket): logged with who asked; nothing changed."""
    log.info(
        "operator %s by %s: %s",
        action,
        actor,
        what,
        extra={
            "bridge_event": "operator",
            "action": action,
            "actor": actor,
            "changed": "",
            "outcome": outcome,
            "filters" if action == "list" else "ticket": what,
        },
    )


WHAT = ("auto", "request", "desk")


def replay(runtime: Runtime, source: str, ticket: str, actor: str = "", what: str = "auto") -> LedgerRecord:
    """Queue a failed, uncertain, rejected, point_failed, queued or stuck request for an attempt now, or re-drive
    the desk updates given up (see the module docstring for ``what``).

    LookupError: no record; :class:`Refused`: its status does not allow it (the message says which do).
    """
    from deskbridge import writeback

    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}")
    before = runtime.ledger.get(source, ticket)
    if before is None:
        raise LookupError(f"no request is recorded for {source}/{ticket}")
    if what == "desk" or (what == "auto" and desk_first(before)):
        return _redrive(runtime, before, writeback.given_up(before), actor)
    if before.erased_at:
        raise Refused(
            f"{source}/{ticket} had its people erased on {before.erased_at}; there is nothing to send "
            "again: approve it again in the desk"
        )
    return _replay_request(runtime, before, actor)


def desk_first(record: LedgerRecord) -> bool:
    """``auto``: the desk updates, when some were given up and a new attempt is not what the request is for."""
    from deskbridge import writeback

    new_attempt = allowed(record.status, Event.REPLAY) and record.status != Status.FAILED_IN_POINT
    return bool(writeback.given_up(record)) and not new_attempt


def _redrive(runtime: Runtime, record: LedgerRecord, given_up: list[str], actor: str) -> LedgerRecord:
    from deskbridge import writeback

    source, ticket = record.source, record.ticket
    if not given_up:
        raise Refused(f"{source}/{ticket} has no desk update that was given up")
    updates = writeback.redrive(runtime, source, ticket)
    if not updates:
        raise Refused(f"{source}/{ticket}: its desk updates are owed already (being written); nothing to re-drive")
    _logged("replay", actor or "unknown", source, ticket, f"desk updates owed again: {', '.join(updates)}",
            "desk_update")
    return runtime.ledger.get(source, ticket) or record


def _replay_request(runtime: Runtime, before: LedgerRecord, actor: str) -> LedgerRecord:
    source, ticket = before.source, before.ticket
    moved = in_ledger(runtime, source, ticket, Change(Event.REPLAY))
    if moved is not None and not moved.applied and moved.record.status == Status.PENDING:
        if not stale(runtime, moved.record):
            raise Refused(f"{source}/{ticket} is being attempted right now; try again in a minute")
        settle_stale(runtime, source, ticket)  # its worker is surely gone: uncertain, which a replay takes
        moved = in_ledger(runtime, source, ticket, Change(Event.REPLAY))
    if moved is None:
        raise LookupError(f"no request is recorded for {source}/{ticket}")
    if not moved.applied:
        raise Refused(
            f"{source}/{ticket} is {moved.record.status}; only failed, uncertain, rejected, point_failed or queued "
            "requests can be replayed (or desk updates that were given up)"
        )
    log.warning(
        "operator replayed %s/%s",
        source,
        ticket,
        extra={"bridge_event": "replay", "source": source, "ticket": ticket},
    )
    _logged(
        "replay",
        actor or "unknown",
        source,
        ticket,
        f"status {before.status}>{moved.record.status}, a new attempt now (attempts so far {moved.record.attempts})",
        str(moved.record.status),
    )
    return moved.record


def erase(runtime: Runtime, source: str, ticket: str, actor: str = "") -> tuple[LedgerRecord, list[str]]:
    """Remove the people from one record now. Returns the record and what was removed ([] if nothing was left
    to remove). LookupError: no record; :class:`Refused`: an attempt may still need the body."""
    removed: list[str] = []

    def forget(record: LedgerRecord) -> LedgerRecord | None:
        removed.clear()
        if record.status in retention.NEEDS_BODY:
            raise Refused(
                f"{source}/{ticket} is {record.status}: an attempt may still send its body; settle it "
                "first (wait for the outcome, or check Syskit Point and let it fail) and erase then"
            )
        removed.extend(erase_in(record, runtime.clock.now()))
        return record if removed or not record.erased_at else None

    record = runtime.ledger.change(source, ticket, forget)
    if record is None:
        raise LookupError(f"no request is recorded for {source}/{ticket}")
    _logged(
        "erase",
        actor or "unknown",
        source,
        ticket,
        f"removed {', '.join(removed)}" if removed else "nothing left to remove",
        "erased",
    )
    return record, removed


def erase_in(record: LedgerRecord, now: datetime) -> list[str]:
    """Remove the people from ``record`` in memory (the caller writes it); what was removed."""
    body, removed = retention.strip_people(record.point_body())
    if removed:
        record.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    masked_error = retention.mask(record.last_error)
    masked_warnings = [retention.mask(w) for w in record.warnings]
    if masked_error != record.last_error:
        removed.append("lastError addresses")
        record.last_error = masked_error
    if masked_warnings != record.warnings:
        removed.append("warnings addresses")
        record.warnings = masked_warnings
    if not record.erased_at:
        record.erased_at = iso(now)
    return removed
