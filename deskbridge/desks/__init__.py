"""The desks: a desk's payload in, an approval (or a reason to ignore it) out.

Reading a payload is pure (``generic``, ``jira``, ``servicenow``: no I/O);
the desks' APIs are adapters of their own (``jira_client.JiraClient``,
``servicenow_client.ServiceNowClient``, ``callback.CallbackClient``), built
by the runtime.

Every write-back step carries a marker (:func:`step_marker`) that the desk
keeps with what was written: a Jira comment property or issue property, a
line in a Jira Service Management note or a ServiceNow work note. A retry
after an unclear write looks for it before writing again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deskbridge.model import InvalidRequest

MARKER_PROPERTY = "deskbridge"  # the Jira comment property holding {"marker": ...}

# The desk routes. Their records' source is the desk's name, and only they write under it.
DESKS = ("jira", "servicenow")
# A /api/provision record that names a desk ticket is kept under "provision-<desk>" (its ledger partition):
# records belong to the route that made them, so a provision caller can never find, block or overwrite what
# /api/jira or /api/servicenow recorded, nor the reverse.
VIA_PROVISION = "provision-"


def provision_source(source: str) -> str:
    """The ledger source of a /api/provision record whose ticket.source is ``source``."""
    return VIA_PROVISION + source if source in DESKS else source


def desk_of(source: str, reply_to: Mapping[str, str]) -> tuple[str, str]:
    """(desk, route) of a record: the desk its outcome belongs to ("" for none), and the route that made it.

    A "jira" record without the issue key the Jira route always keeps (``reply_to["issueKey"]``) was made
    through /api/provision by a bridge older than the route namespaces: it counts as a provision record. An old
    "servicenow" record made that way has no sys_id, so nothing is ever written from it either way."""
    if source.startswith(VIA_PROVISION) and source[len(VIA_PROVISION) :] in DESKS:
        return source[len(VIA_PROVISION) :], "provision"
    if source == "jira":
        return "jira", "jira" if reply_to.get("issueKey") else "provision"
    if source == "servicenow":
        return "servicenow", "servicenow"
    return "", "provision"


def step_marker(source: str, ticket: str, update: str, step: str) -> str:
    """The same short id for the same write-back step, on every try and every worker."""
    digest = hashlib.sha256(f"{source}\n{ticket}\n{update}\n{step}".encode()).hexdigest()
    return f"pdb-{digest[:16]}"


def marker_line(marker: str) -> str:
    """How a marker reads inside a note (found again with a "contains" search)."""
    return f"(Point Desk Bridge ref {marker})"


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
    # What the mapping found wrong while it could still build the draft: intake adds validation's errors
    # and refuses with all of them at once.
    problems: list[InvalidRequest] = field(default_factory=list)
    # Addresses the bridge looked up (casefolded) and for whom: a preflight does not show them.
    looked_up: dict[str, MissingEmail] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignored:
    """A well-formed payload that is not an approval."""

    reason: str
