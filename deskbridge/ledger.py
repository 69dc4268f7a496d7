"""The ledger: one Azure Table record per (source, ticket).

Inserting the record before Syskit Point is called is what makes a request
idempotent: the first insert wins, every later copy reads the outcome.
Status changes use the record's ETag, so two workers never overwrite each
other's view of a request. Record times keep microseconds, from the
runtime's clock.

Every record carries the version of its shape (the ``Shape`` property,
:data:`RECORD_SHAPE`); a record without one was written by release 0.1.0
(shape 1). Reading never fails on an older shape: a property it lacks reads
as its default, which is what the older release meant by leaving it out, and
the next write moves it to the current shape. Properties this release does
not know (written by a newer one, read after a rollback) are kept and written
back as they were. docs/operations.md ("Upgrades") says what each release reads.

A failure of the Table service is a :class:`~deskbridge.errors.StorageError`
(a missing table says so: the tables are made by :meth:`Ledger.ensure`, from
doctor, the local stack or the infra templates, never on the way).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deskbridge.clock import SYSTEM, Clock
from deskbridge.errors import StorageError

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_CHUNK = 30000  # characters per string property (the service allows 64 KiB, UTF-16)
_MAX_CHUNKS = 30


def iso(moment: datetime | None) -> str:
    """UTC with microseconds and a Z: fixed width, so the Table service compares them as it sorts them."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z") if moment else ""


def parse_iso(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


# The shape of what this release writes. 1: release 0.1.0 (no Shape property); 2: release 0.2.0 (Shape,
# ErasedAt; a queue message's "v"; a delivery id's Shape).
RECORD_SHAPE = 2
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_HISTORY = 30  # transitions kept on a record, newest last
_EVENT_KEYS = 10  # Syskit Point idempotency keys kept on a record


# Statuses that wait for Syskit Point's word (an event, or the answer to a poll by request id).
AWAITING_OUTCOME = ("submitted", "provisioning", "uncertain")
NO_REQUEST_ID = (
    "events only: Syskit Point's answer held no request id, so the bridge cannot ask for this request's status"
)


class StaleRecord(Exception):
    """Someone else changed the record since it was read."""


@dataclass
class LedgerRecord:
    source: str
    ticket: str
    status: str
    workspace_type: str = ""
    display_name: str = ""
    name_key: str = ""
    desired_url: str = ""
    template_id: int = 0
    owner_count: int = 0
    member_count: int = 0
    body: str = ""  # the Syskit Point body, kept for retries (never a secret)
    body_hash: str = ""
    reply_to: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    point_request_id: str = ""
    point_status: int = 0
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: str = ""
    created_at: str = ""
    updated_at: str = ""
    submitted_at: str = ""
    url: str = ""
    microsoft_id: str = ""
    correlation_id: str = ""
    replayed_at: str = ""  # when an operator last replayed it: the retry schedule restarts there
    replay_base: int = 0  # attempts made before that replay
    desk_updates: list[str] = field(default_factory=list)  # write-back steps done, never repeated
    # The retry chain: only the queue message carrying this token may attempt the request.
    attempt_token: str = ""
    sends: int = 0  # provisioning POSTs that left the bridge, as far as it knows
    history: list[str] = field(default_factory=list)  # "event>state", newest last
    events: list[str] = field(default_factory=list)  # Syskit Point idempotency keys applied to it
    event_at: str = ""  # when the last Syskit Point event for it came
    # Outcomes the ticket is owed: {update: {"token": ..., "due": iso}}; removed once written or given up.
    desk_owed: dict[str, dict[str, str]] = field(default_factory=dict)
    erased_at: str = ""  # when the people in its body were removed (retention, or an operator's erase)
    shape: int = RECORD_SHAPE  # the shape it was read in (1: written by release 0.1.0); written as the current one
    # Asking Syskit Point by request id (the reconciler, when no event came): when last asked, how often so far,
    # and the keys of an answer it could not read (logged once per request).
    polled_at: str = ""
    polls: int = 0
    poll_unreadable: str = ""
    overdue_at: str = ""  # when it was logged (and noted on its ticket) as overdue: once
    outcome_round: int = 0  # replays of a point_failed request: each round's desk updates are its own
    etag: str = field(default="", repr=False)
    # Properties a newer release wrote that this one does not know: written back untouched.
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)

    def remember(self, entry: str) -> None:
        self.history = [*self.history, entry][-_HISTORY:]

    def applied_event(self, key: str) -> bool:
        return key in self.events

    def add_event(self, key: str) -> None:
        self.events = [*(k for k in self.events if k != key), key][-_EVENT_KEYS:]

    def summary(self) -> dict[str, Any]:
        """What the status route and operators see: no addresses, no body."""
        shown = {
            "status": self.status,
            "ticket": {"source": self.source, "id": self.ticket},
            "pointRequestId": self.point_request_id or None,
            "pointStatus": self.point_status or None,
            "workspace": {
                "type": self.workspace_type,
                "displayName": self.display_name,
                "desiredUrl": self.desired_url,
                "templateId": self.template_id,
                "owners": self.owner_count,
                "members": self.member_count,
            },
            "attempts": self.attempts,
            "lastError": self.last_error or None,
            "nextAttemptAt": self.next_attempt_at or None,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "submittedAt": self.submitted_at or None,
        }
        if self.url or self.microsoft_id:
            shown["workspace"].update({"url": self.url or None, "microsoftId": self.microsoft_id or None})
        if self.correlation_id:
            shown["correlationId"] = self.correlation_id
        if self.warnings:
            shown["warnings"] = list(self.warnings)
        if self.status in AWAITING_OUTCOME and not self.point_request_id:
            shown["outcomeBy"] = NO_REQUEST_ID
        if self.overdue_at and self.status in AWAITING_OUTCOME:
            shown["overdueSince"] = self.overdue_at
        return shown

    def point_body(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


_PROPERTY = {f.name: "".join(part.capitalize() for part in f.name.split("_")) for f in fields(LedgerRecord)}
_JSON_FIELDS = ("reply_to", "warnings", "desk_updates", "history", "events", "desk_owed")
_INT_FIELDS = ("template_id", "owner_count", "member_count", "point_status", "attempts", "replay_base", "sends",
               "polls", "outcome_round")
_NAMES = tuple(f.name for f in fields(LedgerRecord))
_NOT_STORED = ("etag", "unknown", "shape")  # shape is written as max(read, RECORD_SHAPE), below
# A property left out reads back as the field's default (from_entity), so empty ones are not
# written: a fresh record has a dozen, and each costs the Tables SDK's serializer time.
_DEFAULTS = {
    f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
    for f in fields(LedgerRecord)
    if f.default is not MISSING or f.default_factory is not MISSING
}
_ALWAYS_WRITTEN = ("status", "name_key", "workspace_type")  # queried with eq: an absent property never matches


def to_entity(record: LedgerRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in _NAMES}  # read only: no deep copy (asdict)
    for name in _NOT_STORED:
        values.pop(name)
    entity: dict[str, Any] = {**record.unknown, "PartitionKey": values.pop("source"), "RowKey": values.pop("ticket")}
    entity["Shape"] = max(record.shape, RECORD_SHAPE)
    body = values.pop("body")
    chunks = [body[i : i + _CHUNK] for i in range(0, len(body), _CHUNK)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise ValueError("request body too large for the ledger")
    for index, chunk in enumerate(chunks):
        entity[f"Body{index}"] = chunk
    entity["BodyChunks"] = len(chunks)
    for name, value in values.items():
        if name in _DEFAULTS and value == _DEFAULTS[name] and name not in _ALWAYS_WRITTEN:
            continue
        entity[_PROPERTY[name]] = json.dumps(value) if name in _JSON_FIELDS else value
    if record.desk_owed:  # derived, for the reconciler's server-side filter; never read back
        entity["DeskDue"] = min(owed.get("due", "") for owed in record.desk_owed.values())
    return entity


def from_entity(entity: Any) -> LedgerRecord:
    values: dict[str, Any] = {"source": entity["PartitionKey"], "ticket": entity["RowKey"]}
    for name, prop in _PROPERTY.items():
        if name in ("source", "ticket", "body", *_NOT_STORED) or prop not in entity:
            continue
        value = entity[prop]
        values[name] = json.loads(value) if name in _JSON_FIELDS and isinstance(value, str) else value
    chunks = int(entity.get("BodyChunks", 0) or 0)
    values["body"] = "".join(entity.get(f"Body{i}", "") for i in range(chunks))
    for name in _INT_FIELDS:
        if name in values:
            values[name] = int(values[name])
    values["shape"] = int(entity.get("Shape", 1) or 1)
    values["unknown"] = {key: entity[key] for key in entity if not _known(key, chunks)}
    metadata = getattr(entity, "metadata", None) or {}
    values["etag"] = metadata.get("etag") or ""
    return LedgerRecord(**values)


_KNOWN = {*_PROPERTY.values(), "PartitionKey", "RowKey", "BodyChunks", "DeskDue", "Shape", "Timestamp"}


def _known(key: str, chunks: int) -> bool:
    """A property this release reads or derives (the body's chunks included), or the service's own."""
    if key in _KNOWN or key.startswith("odata"):
        return True
    return key.startswith("Body") and key[4:].isdigit() and int(key[4:]) < max(chunks, 1)


@dataclass(frozen=True)
class Stranded:
    """What a sweep needs to know of a record that may be stuck (the reconciler reads it in full to act)."""

    source: str
    ticket: str
    status: str
    updated_at: str
    next_attempt_at: str
    desk_owed: dict[str, dict[str, str]]
    name_key: str
    workspace_type: str
    point_request_id: str = ""


@contextmanager
def _storage(what: str, table: str) -> Iterator[None]:
    """The Tables SDK's failures inside as StorageError (the SDK's error stays the cause)."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise StorageError.from_sdk(exc, what, "table", table, "TableNotFound") from exc


def _missing_table(exc: Exception) -> bool:
    """A 404 for the table itself, not for an entity in it (the service's x-ms-error-code says which: the SDK
    does not set its error_code on every path)."""
    from azure.core.exceptions import HttpResponseError

    response = exc.response if isinstance(exc, HttpResponseError) else None
    return response is not None and response.headers.get("x-ms-error-code") == "TableNotFound"


def _ensure(table: TableClient) -> bool:
    """Create the table if it is missing; True when it was created."""
    from azure.core.exceptions import ResourceExistsError

    with _storage(f"creating the table {table.table_name}", table.table_name):
        try:
            table.create_table()
        except ResourceExistsError:
            return False
    return True


class Ledger:
    """Request records in one Azure Table."""

    def __init__(self, table: TableClient, clock: Clock = SYSTEM) -> None:
        self._table = table
        self._clock = clock
        self.name = table.table_name

    def ensure(self) -> bool:
        """Create the table if it is missing (an explicit step: doctor, the local stack); True if created."""
        return _ensure(self._table)

    def insert(self, record: LedgerRecord) -> bool:
        """Insert if absent. False when a record for this ticket already exists."""
        from azure.core.exceptions import ResourceExistsError

        now = iso(self._clock.now())
        record.created_at = record.created_at or now
        record.updated_at = now
        with _storage("inserting into the ledger", self.name):
            try:
                # The service would echo the whole entity back; only the ETag (a header) is needed.
                metadata = self._table.create_entity(to_entity(record), response_preference="return-no-content")
            except ResourceExistsError:
                return False
        record.etag = self._etag(metadata, record)
        return True

    def get(self, source: str, ticket: str) -> LedgerRecord | None:
        from azure.core.exceptions import ResourceNotFoundError

        with _storage("reading the ledger", self.name):
            try:
                return from_entity(self._table.get_entity(source, ticket))
            except ResourceNotFoundError as exc:
                if _missing_table(exc):
                    raise
                return None

    def save(self, record: LedgerRecord) -> LedgerRecord:
        """Write a record read earlier; StaleRecord if it changed meanwhile."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        if not record.etag:  # no known version: read it again rather than write blind
            raise StaleRecord(f"{record.source}/{record.ticket}: no ETag")
        record.updated_at = iso(self._clock.now())
        with _storage("writing to the ledger", self.name):
            try:
                metadata = self._table.update_entity(
                    to_entity(record),
                    mode=UpdateMode.REPLACE,
                    etag=record.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError) as exc:
                if _missing_table(exc):
                    raise
                raise StaleRecord(f"{record.source}/{record.ticket}") from None
        record.etag = self._etag(metadata, record)
        return record

    def _etag(self, metadata: Any, record: LedgerRecord) -> str:
        """The ETag the service answered; when the SDK hands none back, the one stored now."""
        etag = (metadata or {}).get("etag") or ""
        if not etag:
            stored = self.get(record.source, record.ticket)
            etag = stored.etag if stored is not None else ""
        return etag

    def change(
        self, source: str, ticket: str, mutate: Callable[[LedgerRecord], LedgerRecord | None], tries: int = 8
    ) -> LedgerRecord | None:
        """Read, mutate, write with the ETag; repeat on a race. ``mutate`` returns None to leave it."""
        for _ in range(tries):
            record = self.get(source, ticket)
            if record is None:
                return None
            changed = mutate(record)
            if changed is None:
                return record
            try:
                return self.save(changed)
            except StaleRecord:
                continue
        raise StaleRecord(f"{source}/{ticket}: changed by others {tries} times in a row")

    def by_status(self, statuses: tuple[str, ...] | None = None) -> Iterator[LedgerRecord]:
        with _storage("querying the ledger", self.name):
            if statuses:
                clauses = " or ".join(f"Status eq @s{i}" for i in range(len(statuses)))
                params = {f"s{i}": status for i, status in enumerate(statuses)}
                entities = self._table.query_entities(clauses, parameters=params)
            else:
                entities = self._table.list_entities()
            for entity in entities:
                yield from_entity(entity)

    def find(
        self,
        statuses: tuple[str, ...] | None = None,
        source: str = "",
        created_since: datetime | None = None,
        created_before: datetime | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
        columns: list[str] | None = None,
        updated_before: datetime | None = None,
    ) -> tuple[list[LedgerRecord], tuple[str, str] | None]:
        """Records matching every filter given, filtered by the Table service, in key order (source, ticket),
        starting after the key ``after``; at most ``limit``. Returns them and the key to continue after, or
        None when there are no more. ``columns``: read only these properties (and the keys; give Status)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if updated_before is not None:
            clauses.append("UpdatedAt lt @updated ")
            params["updated"] = iso(updated_before)
        if statuses:  # the SDK substitutes @names split on spaces: keep a space after each one
            clauses.append("(" + "or ".join(f"Status eq @s{i} " for i in range(len(statuses))) + ") ")
            params.update({f"s{i}": status for i, status in enumerate(statuses)})
        if source:
            clauses.append("PartitionKey eq @source ")
            params["source"] = source
        if created_since is not None:
            clauses.append("CreatedAt ge @since ")
            params["since"] = iso(created_since)
        if created_before is not None:
            clauses.append("CreatedAt lt @before ")
            params["before"] = iso(created_before)
        if after is not None:
            clauses.append("(PartitionKey gt @afterp or (PartitionKey eq @afterp and RowKey gt @afterr )) ")
            params.update({"afterp": after[0], "afterr": after[1]})
        # Each clause ends with one space: never two in a row, which the SDK's split on spaces cannot take.
        query = "and ".join(clauses).rstrip()
        found: list[LedgerRecord] = []
        select = ["PartitionKey", "RowKey", *columns] if columns else None
        with _storage("querying the ledger", self.name):
            if query:
                entities = self._table.query_entities(query, parameters=params, select=select)
            else:
                entities = self._table.list_entities(select=select)
            for entity in entities:
                if limit is not None and len(found) == limit:
                    last = found[-1]
                    return found, (last.source, last.ticket)
                found.append(from_entity(entity))
        return found, None

    def by_name(self, name_key: str, workspace_type: str) -> list[LedgerRecord]:
        """Every request for this workspace, open or settled, oldest first."""
        with _storage("querying the ledger", self.name):
            entities = self._table.query_entities(
                "NameKey eq @name and WorkspaceType eq @type", parameters={"name": name_key, "type": workspace_type}
            )
            records = [from_entity(e) for e in entities]
        return sorted(records, key=lambda r: parse_iso(r.created_at) or _EARLIEST)

    def stranded(
        self,
        stale_before: datetime,
        lost_before: datetime,
        uncertain_before: datetime | None = None,
        quiet_before: datetime | None = None,
    ) -> Iterator[Stranded]:
        """Records a sweep must look at, filtered by the Table service: pending since before
        ``stale_before``, queued with a next attempt before ``lost_before``, a desk update due before
        ``lost_before``, (optionally) uncertain since before ``uncertain_before``, and (optionally) waiting for
        Syskit Point's word (submitted, provisioning, uncertain) with no change since before ``quiet_before``:
        a poll or the overdue note may be due. Settled records, nearly all of a big ledger, never leave the
        service."""
        # The SDK substitutes @names split on spaces: keep a space after each one.
        clauses = [
            "(Status eq 'pending' and UpdatedAt lt @stale )",
            "(Status eq 'queued' and NextAttemptAt lt @lost )",
            "DeskDue lt @lost",
        ]
        params = {"stale": iso(stale_before), "lost": iso(lost_before)}
        if uncertain_before is not None:
            clauses.append("(Status eq 'uncertain' and UpdatedAt lt @uncertain )")
            params["uncertain"] = iso(uncertain_before)
        if quiet_before is not None:
            clauses += [
                "((Status eq 'submitted' or Status eq 'provisioning') and UpdatedAt lt @quiet )",
                "(Status eq 'uncertain' and PointRequestId ne '' and UpdatedAt lt @quiet )",
            ]
            params["quiet"] = iso(quiet_before)
        columns = ["PartitionKey", "RowKey", "Status", "UpdatedAt", "NextAttemptAt", "DeskOwed", "NameKey",
                   "WorkspaceType", "PointRequestId"]
        with _storage("querying the ledger", self.name):
            for entity in self._table.query_entities(" or ".join(clauses), parameters=params, select=columns):
                owed = entity.get("DeskOwed")
                yield Stranded(
                    source=entity["PartitionKey"],
                    ticket=entity["RowKey"],
                    status=entity.get("Status", ""),
                    updated_at=entity.get("UpdatedAt", ""),
                    next_attempt_at=entity.get("NextAttemptAt", ""),
                    desk_owed=json.loads(owed) if isinstance(owed, str) and owed else {},
                    name_key=entity.get("NameKey", ""),
                    workspace_type=entity.get("WorkspaceType", ""),
                    point_request_id=entity.get("PointRequestId", "") or "",
                )


def _row_key(delivery_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in delivery_id)[:250]


class Deliveries:
    """Delivery ids already handled (the signed approval routes' webhook-id): drop replays.

    A row holds when the id was first seen and a fingerprint of what came with it (a hash of the
    body), so a retry of the same delivery can be told from a replayed id on another body.
    """

    def __init__(self, table: TableClient, clock: Clock = SYSTEM) -> None:
        self._table = table
        self._clock = clock
        self.name = table.table_name

    def ensure(self) -> bool:
        """Create the table if it is missing; True if created."""
        return _ensure(self._table)

    def first_time(self, kind: str, delivery_id: str, fingerprint: str = "") -> bool:
        """Record the id; False when it was seen before."""
        from azure.core.exceptions import ResourceExistsError

        entity = {
            "PartitionKey": kind,
            "RowKey": _row_key(delivery_id),
            "SeenAt": iso(self._clock.now()),
            "Shape": RECORD_SHAPE,
        }  # 0.1.0 wrote none: read the same (only SeenAt and Fingerprint are read)
        if fingerprint:
            entity["Fingerprint"] = fingerprint
        with _storage("recording a delivery id", self.name):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def fingerprint(self, kind: str, delivery_id: str) -> str | None:
        """The fingerprint recorded with the id ("" if none), or None when the id is not recorded."""
        from azure.core.exceptions import ResourceNotFoundError

        with _storage("reading a delivery id", self.name):
            try:
                entity = self._table.get_entity(kind, _row_key(delivery_id))
            except ResourceNotFoundError as exc:
                if _missing_table(exc):
                    raise
                return None
        return str(entity.get("Fingerprint", ""))

    def forget(self, kind: str, delivery_id: str) -> None:
        """Undo first_time when handling failed, so the sender's retry is processed."""
        with _storage("forgetting a delivery id", self.name):
            self._table.delete_entity(kind, _row_key(delivery_id))

    # -- notes owed to a ticket that has no ledger record (an approval refused at intake) ----------------

    def owe_note(self, kind: str, note_id: str, data: dict[str, Any]) -> bool:
        """Record a note a ticket is owed (``data``: what writing it needs), once per id; False when the id was
        recorded before (written, or still owed)."""
        from azure.core.exceptions import ResourceExistsError

        entity = {"PartitionKey": kind, "RowKey": _row_key(note_id), "SeenAt": iso(self._clock.now()),
                  "Owed": True, "Data": json.dumps(data)}
        with _storage("recording a note owed", self.name):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def owed_note(self, kind: str, note_id: str) -> dict[str, Any] | None:
        """What writing the note needs, while it is owed; None when it is written, given up or unknown."""
        from azure.core.exceptions import ResourceNotFoundError

        with _storage("reading a note owed", self.name):
            try:
                entity = self._table.get_entity(kind, _row_key(note_id))
            except ResourceNotFoundError as exc:
                if _missing_table(exc):
                    raise
                return None
        if not entity.get("Owed"):
            return None
        data = json.loads(entity.get("Data") or "{}")
        return data if isinstance(data, dict) else None

    def settle_note(self, kind: str, note_id: str, outcome: str) -> None:
        """The note is owed no longer (``outcome``: written, or gave-up)."""
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": kind, "RowKey": _row_key(note_id), "Owed": False, "Outcome": outcome}
        with _storage("settling a note owed", self.name):
            self._table.update_entity(entity, mode=UpdateMode.MERGE)

    def notes_overdue(self, kind: str, seen_before: datetime) -> list[dict[str, Any]]:
        """Notes still owed since before ``seen_before`` (their message was lost): each one's data, and its
        due time moved to now (the caller queues it again)."""
        from azure.data.tables import UpdateMode

        found = []
        with _storage("querying the notes owed", self.name):
            entities = self._table.query_entities(
                "PartitionKey eq @kind and Owed eq true and SeenAt lt @cutoff",
                parameters={"kind": kind, "cutoff": iso(seen_before)},
            )
            for entity in entities:
                data = json.loads(entity.get("Data") or "{}")
                self._table.update_entity(
                    {"PartitionKey": kind, "RowKey": entity["RowKey"], "SeenAt": iso(self._clock.now())},
                    mode=UpdateMode.MERGE,
                )
                if isinstance(data, dict):
                    found.append(data)
        return found

    def prune(self, seen_before: datetime) -> int:
        """Delete ids first seen before ``seen_before`` (batches of 100 per kind); returns how many."""
        pruned = 0
        with _storage("pruning delivery ids", self.name):
            entities = self._table.query_entities(
                "SeenAt lt @cutoff", parameters={"cutoff": iso(seen_before)}, select=["PartitionKey", "RowKey"]
            )
            batch: list[tuple[str, Any]] = []
            for entity in entities:
                if batch and (len(batch) == 100 or batch[0][1]["PartitionKey"] != entity["PartitionKey"]):
                    self._table.submit_transaction(batch)
                    pruned += len(batch)
                    batch = []
                batch.append(("delete", {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}))
            if batch:
                self._table.submit_transaction(batch)
                pruned += len(batch)
        return pruned
