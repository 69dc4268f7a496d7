"""The durable retry path's rules: the schedule, and what a queue message holds.

No I/O here: sending and receiving is deskbridge.queues. A message names
only the ledger key (source and ticket, and for desk updates which outcome
to write) and the attempt token of the chain it belongs to, never the
request body or a secret; the ledger holds the rest. A message carries the
version of its shape (``"v"``, :data:`MESSAGE_SHAPE`); one without it was
written by release 0.1.0 (shape 1) and reads the same: every field it lacks
means what 0.1.0 meant by leaving it out. Fields a message has that this
release does not know are ignored, so a rollback reads a newer message.
A message whose token is not the record's current one is dropped, so a
replay, a redelivery or a reconciler re-queue never runs two chains. A
retry's delay is the message's initial visibility timeout, so no function
ever sleeps waiting for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def next_delay(
    attempts: int, age_seconds: float, schedule: Sequence[int], max_age_seconds: float, retry_after: float | None = None
) -> int | None:
    """Seconds until the next attempt after ``attempts`` attempts, or None when they are over.

    The schedule is followed in order; its last step repeats until the request
    is at least ``max_age_seconds`` old. A server's ``Retry-After`` can only
    lengthen a step.
    """
    step = attempts - 1
    if step >= len(schedule) and age_seconds >= max_age_seconds:
        return None
    delay = schedule[min(max(step, 0), len(schedule) - 1)]
    if retry_after is not None:
        delay = max(delay, int(retry_after + 0.999))
    return min(delay, 7 * 24 * 3600 - 1)


def scheduled_age(attempts: int, schedule: Sequence[int]) -> int:
    """Seconds the schedule has waited before attempt number ``attempts`` + 1."""
    return sum(schedule[min(step, len(schedule) - 1)] for step in range(max(attempts - 1, 0)))


# 1: release 0.1.0 (no "v"); 2: release 0.2.0.
MESSAGE_SHAPE = 2


@dataclass(frozen=True)
class QueueKey:
    source: str
    ticket: str
    update: str = ""  # desk updates: which outcome to write (provisioning, completed, point_failed)
    token: str = ""  # the attempt token of the chain this message belongs to ("" from older versions)
    check: bool = False  # desk updates: an earlier try may have written; look for the marker first
    shape: int = field(default=MESSAGE_SHAPE, compare=False)  # the shape read (1: from 0.1.0); written as the current

    def encode(self) -> str:
        body: dict[str, Any] = {"v": MESSAGE_SHAPE, "source": self.source, "ticket": self.ticket}
        if self.update:
            body["update"] = self.update
        if self.token:
            body["token"] = self.token
        if self.check:
            body["check"] = True
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> QueueKey:
        try:
            body = json.loads(text)
        except ValueError:
            raise ValueError("a queue message must be JSON") from None
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("source"), str)
            or not isinstance(body.get("ticket"), str)
        ):
            raise ValueError('a queue message must be {"source": ..., "ticket": ...}')
        shape = body.get("v", 1)
        return cls(
            body["source"],
            body["ticket"],
            str(body.get("update", "")),
            str(body.get("token", "")),
            body.get("check") is True,
            shape if isinstance(shape, int) and not isinstance(shape, bool) else 1,
        )


def new_token() -> str:
    """A fresh attempt token: which message may act on a record now."""
    import secrets

    return secrets.token_hex(6)
