"""Desk adapters: a desk's payload in, an approval (or a reason to ignore it) out.

Each adapter is pure on the way in; writing back to a desk lives beside it
(`jira.JiraClient`, `servicenow.ServiceNowClient`, `generic.send_callback`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TicketRef:
    source: str
    id: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "id": self.id}


@dataclass(frozen=True)
class MissingEmail:
    """A desk user the payload named without an e-mail address."""

    role: str  # "owners" or "members"
    account_id: str
    display_name: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "accountId": self.account_id, "displayName": self.display_name}


@dataclass
class Approval:
    """An approved ticket: who it is, and the draft provisioning body."""

    ticket: TicketRef
    draft: dict[str, Any]
    # What writing back needs: the Jira key, a ServiceNow sys_id, a callback URL.
    reply_to: dict[str, str] = field(default_factory=dict)
    missing: list[MissingEmail] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ignored:
    """A well-formed payload that is not an approval."""

    reason: str
