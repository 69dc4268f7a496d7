"""The provisioning request, its validation, and the request statuses.

Pure: no I/O. Desk adapters turn their payloads into a *draft* (a mapping
shaped like Syskit Point's provisioning body, plus ``workspaceType``), and
:func:`validate` turns a draft into a :class:`ProvisioningRequest` or raises
:class:`InvalidRequest` listing every problem at once.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

WORKSPACE_TYPES = ("teams", "groups", "sites", "yammer")

DISPLAY_NAME_MAX = 256
DESCRIPTION_MAX = 4000
COMMENT_MAX = 4000
DESIRED_URL_MAX = 100
EMAIL_MAX = 254
METADATA_MAX_BYTES = 16384

# Names people use for workspace types (select options, catalog choices).
_WORKSPACE_ALIASES = {
    "teams": "teams",
    "team": "teams",
    "microsoft teams": "teams",
    "microsoftteams": "teams",
    "ms teams": "teams",
    "groups": "groups",
    "group": "groups",
    "m365 group": "groups",
    "m365group": "groups",
    "microsoft 365 group": "groups",
    "office 365 group": "groups",
    "sites": "sites",
    "site": "sites",
    "sharepoint": "sites",
    "sharepoint site": "sites",
    "sharepointsitecollection": "sites",
    "communication site": "sites",
    "yammer": "yammer",
    "viva engage": "yammer",
    "viva engage community": "yammer",
    "yammercommunity": "yammer",
    "community": "yammer",
}

# Syskit Point webhook `content.type` values.
EVENT_WORKSPACE_TYPES = {
    "MicrosoftTeams": "teams",
    "M365Group": "groups",
    "SharePointSiteCollection": "sites",
    "YammerCommunity": "yammer",
}


class Status(StrEnum):
    """Where a request stands. Stored in the ledger and answered to callers."""

    PENDING = "pending"  # recorded, first Syskit Point call under way
    SUBMITTED = "submitted"  # Syskit Point accepted it
    QUEUED = "queued"  # waiting for another attempt
    REJECTED = "rejected"  # invalid input, or Syskit Point refused it
    UNCERTAIN = "uncertain"  # sent, outcome unknown: an operator or a webhook settles it
    FAILED = "failed"  # attempts ran out
    PROVISIONING = "provisioning"  # Syskit Point said it started
    COMPLETED = "completed"  # Syskit Point said it is done
    FAILED_IN_POINT = "point_failed"  # Syskit Point said provisioning failed
    IGNORED = "ignored"  # not an approval (never stored)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidRequest(Exception):
    """Input that cannot become a provisioning request; ``http_status`` says why."""

    def __init__(self, errors: Sequence[FieldError], http_status: int = 400) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)
        self.http_status = http_status

    @classmethod
    def joined(cls, problems: Sequence[InvalidRequest]) -> InvalidRequest:
        """Every problem found, as one refusal: 400 when any of them is the body's, else the status they share
        (422: it is understood, but someone must act first, e.g. make an owner's e-mail visible)."""
        return cls([e for p in problems for e in p.errors], min(p.http_status for p in problems))

    def beyond(self, known: Sequence[FieldError]) -> list[FieldError]:
        """The errors about fields that ``known`` does not name already (``owners[0]`` is ``owners``)."""
        named = {e.field.split("[")[0] for e in known}
        return [e for e in self.errors if e.field.split("[")[0] not in named]


@dataclass(frozen=True)
class Limits:
    max_owners: int = 100
    max_members: int = 1000


@dataclass(frozen=True)
class Policy:
    """What the deployment allows; comes from settings."""

    allowed_template_ids: frozenset[int] = frozenset()
    default_template_ids: Mapping[str, int] = field(default_factory=dict)  # by workspace type; "" for any
    default_workspace_type: str = "teams"
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class ProvisioningRequest:
    workspace_type: str
    template_id: int
    display_name: str
    desired_url: str
    owners: tuple[str, ...]
    members: tuple[str, ...]
    description: str
    comment: str
    metadata: Mapping[str, Any]
    is_private: bool

    def point_body(self) -> dict[str, Any]:
        """The body Syskit Point's provisioning endpoint takes."""
        return {
            "templateId": self.template_id,
            "displayName": self.display_name,
            "desiredUrl": self.desired_url,
            "owners": list(self.owners),
            "members": list(self.members),
            "description": self.description,
            "comment": self.comment,
            "metadata": dict(self.metadata),
            "isPrivate": self.is_private,
        }

    def canonical_json(self) -> str:
        body = self.point_body()
        body["workspaceType"] = self.workspace_type
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def name_key(self) -> str:
        return name_key(self.display_name)

    @property
    def point_path(self) -> str:
        """Where Syskit Point takes it: one provisioning endpoint per workspace type."""
        return f"/v1.0/provision/{self.workspace_type}"


def slugify(name: str) -> str:
    """Syskit's documented slug rule, kept to ASCII so the URL check passes.

    Lower case, accents folded, non-word characters removed, spaces (and
    underscores) to '-', repeated '-' collapsed, no '-' at either end.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    kept = re.sub(r"[^a-z0-9\s_-]", "", folded)
    dashed = re.sub(r"[\s_]+", "-", kept)
    return re.sub(r"-{2,}", "-", dashed).strip("-")[:DESIRED_URL_MAX].strip("-")


def name_key(display_name: str) -> str:
    """How a workspace name is compared with Syskit Point's webhook events."""
    return " ".join(unicodedata.normalize("NFKC", display_name).casefold().split())


def workspace_type_from_text(text: str) -> str | None:
    return _WORKSPACE_ALIASES.get(" ".join(str(text).strip().lower().replace("_", " ").split()))


_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_DESIRED_URL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def is_email(value: str) -> bool:
    return len(value) <= EMAIL_MAX and _EMAIL.fullmatch(value) is not None and ".." not in value


def parse_bool(value: Any) -> bool | None:
    """A boolean, or the strings ServiceNow and Jira send for one; None if neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "1", "private", "on"):
            return True
        if text in ("false", "no", "0", "public", "off", ""):
            return False
    return None


def _people(draft: Mapping[str, Any], key: str, errors: list[FieldError], limit: int) -> list[str]:
    raw = draft.get(key)
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[,;\s]+", raw) if part]
    if not isinstance(raw, list):
        errors.append(FieldError(key, "must be a list of e-mail addresses"))
        return []
    if len(raw) > limit:
        errors.append(FieldError(key, f"names {len(raw)} people; at most {limit} are allowed"))
        return []
    people: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, str):
            errors.append(FieldError(f"{key}[{index}]", "must be an e-mail address (a string)"))
            continue
        address = entry.strip()
        if not is_email(address):
            shown = (
                address
                if len(address) <= 80 and not _CONTROL.search(address)
                else address[:80].encode("unicode_escape").decode()
            )
            errors.append(FieldError(f"{key}[{index}]", f"'{shown}' is not a valid e-mail address"))
            continue
        folded = address.casefold()
        if folded not in seen:
            seen.add(folded)
            people.append(address)
    return people


def _text(draft: Mapping[str, Any], key: str, limit: int, errors: list[FieldError], *, multiline: bool) -> str:
    value = draft.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(key, "must be a string"))
        return ""
    if len(value) > limit:
        errors.append(FieldError(key, f"is {len(value)} characters long; at most {limit} are allowed"))
        return ""
    pattern = _CONTROL_EXCEPT_NEWLINES if multiline else _CONTROL
    if pattern.search(value):
        errors.append(FieldError(key, "must not contain control characters"))
        return ""
    return value.strip()


def _template_id(draft: Mapping[str, Any], workspace_type: str, policy: Policy, errors: list[FieldError]) -> int:
    raw = draft.get("templateId")
    if raw is None or raw == "":
        default = policy.default_template_ids.get(workspace_type, policy.default_template_ids.get(""))
        if default is None:
            errors.append(FieldError("templateId", f"is required (no default template for {workspace_type})"))
            return 0
        return default
    if isinstance(raw, bool):
        template_id = None
    elif isinstance(raw, int):
        template_id = raw
    elif isinstance(raw, float) and raw.is_integer():
        template_id = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", raw):
        template_id = int(raw)
    else:
        template_id = None
    if template_id is None or not 0 < template_id < 2**31:
        errors.append(FieldError("templateId", "must be a positive whole number"))
        return 0
    if policy.allowed_template_ids and template_id not in policy.allowed_template_ids:
        allowed = ", ".join(str(t) for t in sorted(policy.allowed_template_ids))
        errors.append(FieldError("templateId", f"template {template_id} is not allowed here (allowed: {allowed})"))
    return template_id


def validate(draft: Mapping[str, Any], policy: Policy) -> ProvisioningRequest:
    """Check a draft and build the request; raises InvalidRequest with every problem."""
    errors: list[FieldError] = []

    workspace_type = policy.default_workspace_type
    raw_type = draft.get("workspaceType")
    if raw_type not in (None, ""):
        resolved = workspace_type_from_text(raw_type) if isinstance(raw_type, str) else None
        if resolved is None:
            errors.append(FieldError("workspaceType", "must be one of " + ", ".join(WORKSPACE_TYPES)))
        else:
            workspace_type = resolved

    display_name = _text(draft, "displayName", DISPLAY_NAME_MAX, errors, multiline=False)
    if not display_name and not any(e.field == "displayName" for e in errors):
        errors.append(FieldError("displayName", "is required"))

    desired_url = ""
    raw_url = draft.get("desiredUrl")
    if raw_url not in (None, ""):
        if not isinstance(raw_url, str):
            errors.append(FieldError("desiredUrl", "must be a string"))
        else:
            desired_url = raw_url.strip().lower()
            if len(desired_url) > DESIRED_URL_MAX or not _DESIRED_URL.fullmatch(desired_url) or "--" in desired_url:
                errors.append(
                    FieldError(
                        "desiredUrl",
                        "may hold only lower-case letters, digits and single '-' (not at either end), "
                        f"at most {DESIRED_URL_MAX} characters",
                    )
                )
    elif display_name:
        desired_url = slugify(display_name)
        if not desired_url:
            errors.append(
                FieldError("desiredUrl", "cannot be derived from displayName (no letters or digits); give one")
            )

    owners = _people(draft, "owners", errors, policy.limits.max_owners)
    members = _people(draft, "members", errors, policy.limits.max_members)
    if not owners and not any(e.field.startswith("owners") for e in errors):
        errors.append(FieldError("owners", "at least one owner with an e-mail address is required"))
    owner_keys = {o.casefold() for o in owners}
    members = [m for m in members if m.casefold() not in owner_keys]

    description = _text(draft, "description", DESCRIPTION_MAX, errors, multiline=True)
    comment = _text(draft, "comment", COMMENT_MAX, errors, multiline=True)

    metadata = draft.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        errors.append(FieldError("metadata", "must be an object"))
        metadata = {}
    elif len(json.dumps(metadata, ensure_ascii=False)) > METADATA_MAX_BYTES:
        errors.append(FieldError("metadata", f"is larger than {METADATA_MAX_BYTES} bytes"))
        metadata = {}

    is_private = parse_bool(draft.get("isPrivate", False))
    if is_private is None:
        errors.append(FieldError("isPrivate", "must be true or false"))
        is_private = False

    template_id = _template_id(draft, workspace_type, policy, errors)

    if errors:
        raise InvalidRequest(errors)
    return ProvisioningRequest(
        workspace_type=workspace_type,
        template_id=template_id,
        display_name=display_name,
        desired_url=desired_url,
        owners=tuple(owners),
        members=tuple(members),
        description=description,
        comment=comment,
        metadata=metadata,
        is_private=is_private,
    )


_TICKET_ID = re.compile(r"[^\x00-\x1f\x7f-\x9f/\\#?]{1,128}")  # what Azure Table keys refuse
SOURCES = re.compile(r"[a-z][a-z0-9-]{0,31}")


def check_source(source: str) -> list[FieldError]:
    if SOURCES.fullmatch(source):
        return []
    return [FieldError("ticket.source", "must be lower-case letters, digits or '-', at most 32 characters")]


def check_ticket(source: str, ticket_id: str) -> list[FieldError]:
    """Ticket identity must be storable as an Azure Table key."""
    errors = check_source(source)
    if not _TICKET_ID.fullmatch(ticket_id) or ticket_id != ticket_id.strip():
        errors.append(
            FieldError(
                "ticket.id",
                "must be 1 to 128 characters, without '/', '\\', '#', '?', control characters or edge spaces",
            )
        )
    return errors


# The forms of the desks' own identifiers. They go into the desks' REST paths (percent-encoded there too), so
# anything else is refused at intake, by the field that carried it.
ISSUE_KEY_FORM = re.compile(r"[A-Z][A-Z0-9_]{1,99}-[0-9]{1,18}")
RITM_NUMBER_FORM = re.compile(r"[A-Z]{2,16}[0-9]{1,32}")
SYS_ID_FORM = re.compile(r"[0-9a-f]{32}")

DESK_ID_FORMS = {
    "jira": (ISSUE_KEY_FORM, "must be a Jira issue key such as HR-42 (upper-case project key, '-', a number)"),
    "servicenow": (RITM_NUMBER_FORM, "must be a ServiceNow number such as RITM0010452 (capital letters, then digits)"),
    "sys_id": (SYS_ID_FORM, "must be 32 lower-case hexadecimal characters"),
}


def check_desk_id(kind: str, field: str, value: str) -> list[FieldError]:
    """``value`` as the desk writes identifiers of ``kind`` (jira, servicenow, sys_id), or an error naming
    ``field``. The status route does not use it: a record stored before these checks is still found."""
    form, message = DESK_ID_FORMS[kind]
    return [] if form.fullmatch(value) else [FieldError(field, message)]
