"""What Syskit Point's answer to ``GET /v1.0/provision/requests/{id}`` says, read tolerantly.

Syskit does not publish the answer's shape, so the bridge reads what it can
and nothing more:

- the status is the value of a ``status`` or ``state`` key (the key and the
  value in any case);
- completed, succeeded, provisioned, done: the workspace is there
  (its address from ``url``, ``siteUrl`` or ``workspaceUrl``, a plain https
  link only);
- failed, error: provisioning failed (the reason from ``error``,
  ``errorMessage`` or ``message``);
- rejected, declined, cancelled (canceled): Syskit Point refused it;
- any other status: still running.

An answer with no such status (not an object, no status key, a status that
is not text) is unreadable: :attr:`Reading.keys` lists the keys seen, never
their values, for the log. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

COMPLETED, FAILED, REFUSED, RUNNING = "completed", "failed", "refused", "running"

_MEANING = {
    "completed": COMPLETED,
    "succeeded": COMPLETED,
    "provisioned": COMPLETED,
    "done": COMPLETED,
    "failed": FAILED,
    "error": FAILED,
    "rejected": REFUSED,
    "declined": REFUSED,
    "cancelled": REFUSED,
    "canceled": REFUSED,
}
_STATUS_KEYS = ("status", "state")
_REASON_KEYS = ("error", "errormessage", "message")
_URL_KEYS = ("url", "siteurl", "workspaceurl")
_PLAIN_HTTPS = re.compile(r"https://[^\s<>\"'`]{1,2000}")


@dataclass(frozen=True)
class Reading:
    outcome: str  # completed, failed, refused, running; "" when unreadable
    status: str = ""  # the status as Syskit Point spelled it (at most 60 characters)
    reason: str = ""  # failed or refused: why, as Syskit Point put it
    url: str = ""  # completed: the workspace's address, when a plain https link was given
    keys: tuple[str, ...] = ()  # unreadable: the keys the answer had (never the values)

    @property
    def readable(self) -> bool:
        return bool(self.outcome)


def _field(answer: dict[str, Any], names: tuple[str, ...]) -> Any:
    by_lower = {str(key).casefold(): value for key, value in answer.items()}
    for name in names:
        if name in by_lower:
            return by_lower[name]
    return None


def read(answer: Any) -> Reading:
    """The meaning of one status answer (see the module docstring)."""
    if not isinstance(answer, dict):
        return Reading("", keys=(f"({type(answer).__name__})",))
    status = _field(answer, _STATUS_KEYS)
    if not isinstance(status, str) or not status.strip():
        return Reading("", keys=tuple(sorted(str(key)[:40] for key in answer))[:30])
    spelled = status.strip()[:60]
    outcome = _MEANING.get(spelled.casefold().replace(" ", ""), RUNNING)
    reason = ""
    if outcome in (FAILED, REFUSED):
        found = _field(answer, _REASON_KEYS)
        reason = (found if isinstance(found, str) else "").strip()[:1000]
    url = ""
    if outcome == COMPLETED:
        for name in _URL_KEYS:
            found = _field(answer, (name,))
            if isinstance(found, str) and _PLAIN_HTTPS.fullmatch(found):
                url = found
                break
    return Reading(outcome, spelled, reason, url)
