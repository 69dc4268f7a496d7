"""The ledger: one Azure Table record per (source, ticket).

Inserting the record before Syskit Point is called is what makes a request
idempotent: the first insert wins, every later copy reads the outcome.
Status changes use the record's ETag, so two workers never overwrite each
other's view of a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from deskbridge.model import OPEN_STATUSES

_CHUNK = 30000  # characters per string property (the service allows 64 KiB, UTF-16)
_MAX_CHUNKS = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else ""


def parse_iso(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


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
    etag: str = field(default="", repr=False)

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
        return shown

    def point_body(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


_PROPERTY = {f.name: "".join(part.capitalize() for part in f.name.split("_")) for f in fields(LedgerRecord)}
_JSON_FIELDS = ("reply_to", "warnings", "desk_updates")
_NAMES = tuple(f.name for f in fields(LedgerRecord))
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
    values.pop("etag")
    entity: dict[str, Any] = {"PartitionKey": values.pop("source"), "RowKey": values.pop("ticket")}
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
    return entity


def from_entity(entity: Any) -> LedgerRecord:
    values: dict[str, Any] = {"source": entity["PartitionKey"], "ticket": entity["RowKey"]}
    for name, prop in _PROPERTY.items():
        if name in ("source", "ticket", "body", "etag") or prop not in entity:
            continue
        value = entity[prop]
        values[name] = json.loads(value) if name in _JSON_FIELDS and isinstance(value, str) else value
    chunks = int(entity.get("BodyChunks", 0) or 0)
    values["body"] = "".join(entity.get(f"Body{i}", "") for i in range(chunks))
    for name in ("template_id", "owner_count", "member_count", "point_status", "attempts", "replay_base"):
        if name in values:
            values[name] = int(values[name])
    metadata = getattr(entity, "metadata", None) or {}
    values["etag"] = metadata.get("etag", "")
    return LedgerRecord(**values)


def ensure_table(table: Any) -> Any:
    """Create the table if it is missing (once per process, when the client is built)."""
    from azure.core.exceptions import ResourceExistsError

    try:
        table.create_table()
    except ResourceExistsError:
        pass
    return table


class Ledger:
    """Request records in one Azure Table (``TableClient``)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def insert(self, record: LedgerRecord) -> bool:
        """Insert if absent. False when a record for this ticket already exists."""
        from azure.core.exceptions import ResourceExistsError

        now = iso(utcnow())
        record.created_at = record.created_at or now
        record.updated_at = now
        try:
            # The service would echo the whole entity back; only the ETag (a header) is needed.
            metadata = self._table.create_entity(to_entity(record), response_preference="return-no-content")
        except ResourceExistsError:
            return False
        record.etag = (metadata or {}).get("etag", "")
        return True

    def get(self, source: str, ticket: str) -> LedgerRecord | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return from_entity(self._table.get_entity(source, ticket))
        except ResourceNotFoundError:
            return None

    def save(self, record: LedgerRecord) -> LedgerRecord:
        """Write a record read earlier; StaleRecord if it changed meanwhile."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        record.updated_at = iso(utcnow())
        try:
            metadata = self._table.update_entity(
                to_entity(record),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StaleRecord(f"{record.source}/{record.ticket}") from None
        record.etag = (metadata or {}).get("etag", "")
        return record

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
        if statuses:
            clauses = " or ".join(f"Status eq @s{i}" for i in range(len(statuses)))
            params = {f"s{i}": status for i, status in enumerate(statuses)}
            entities = self._table.query_entities(clauses, parameters=params)
        else:
            entities = self._table.list_entities()
        for entity in entities:
            yield from_entity(entity)

    def open_by_name(self, name_key: str, workspace_type: str) -> list[LedgerRecord]:
        """Open requests for this workspace, oldest first (correlating Point's events)."""
        entities = self._table.query_entities(
            "NameKey eq @name and WorkspaceType eq @type", parameters={"name": name_key, "type": workspace_type}
        )
        records = [from_entity(e) for e in entities]
        open_ones = [r for r in records if r.status in OPEN_STATUSES]
        return sorted(open_ones, key=lambda r: r.created_at)



def _row_key(delivery_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in delivery_id)[:250]


class Deliveries:
    """Delivery ids already handled (webhook-id, Point idempotencyKey): drop replays."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def first_time(self, kind: str, delivery_id: str) -> bool:
        """Record the id; False when it was seen before."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self._table.create_entity({"PartitionKey": kind, "RowKey": _row_key(delivery_id), "SeenAt": iso(utcnow())})
        except ResourceExistsError:
            return False
        return True

    def forget(self, kind: str, delivery_id: str) -> None:
        """Undo first_time when handling failed, so the sender's retry is processed."""
        self._table.delete_entity(kind, _row_key(delivery_id))
