"""Personal data in a record, and what erasing it leaves (BRIDGE_RECORD_RETENTION_DAYS, ``erase``).

Pure: no I/O. A record keeps the Syskit Point body for retries; once the
request is settled its people are no longer needed. Erasing removes them
from the body (``owners``, ``members``, and every metadata value holding an
e-mail address, such as a reporter) and masks addresses in the record's
free text (``last_error``, ``warnings``). What an audit needs stays: the
ticket, the workspace's name, type, template and address, the outcome, the
times, the history of transitions, the Syskit Point request id and the counts
of owners and members.
"""

from __future__ import annotations

import re
from typing import Any

# Settled: nothing will send the body again (a replay of failed or rejected after erasure is refused).
SETTLED = ("completed", "point_failed", "rejected", "failed")
# Open and needing the body for an attempt: never erased (settle or wait first).
NEEDS_BODY = ("pending", "queued", "uncertain")
PEOPLE_KEYS = ("owners", "members", "reporter", "requester", "requestedBy", "createdBy")
MASK = "(erased)"
_ADDRESS = re.compile(r"[^\s\"'<>(),;:@]+@[^\s\"'<>(),;:@]+\.[^\s\"'<>(),;:@]+")


def mask(text: str) -> str:
    """``text`` with every e-mail address replaced by :data:`MASK`."""
    return _ADDRESS.sub(MASK, text)


def _holds_person(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_ADDRESS.search(value))
    if isinstance(value, list):
        return any(_holds_person(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_person(item) for item in value.values())
    return False


def strip_people(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body without its people, and the names of what was removed (``owners``, ``metadata.reporter``)."""
    kept: dict[str, Any] = {}
    removed: list[str] = []
    lowered = {key.casefold() for key in PEOPLE_KEYS}
    for key, value in body.items():
        if key.casefold() in lowered:
            removed.append(key)
        elif key == "metadata" and isinstance(value, dict):
            metadata = {}
            for name, item in value.items():
                if name.casefold() in lowered or _holds_person(item):
                    removed.append(f"metadata.{name}")
                else:
                    metadata[name] = item
            kept[key] = metadata
        else:
            kept[key] = value
    return kept, removed
