"""Hostile input for every POST route, as hypothesis strategies, and the properties every answer must hold.

A :class:`Case` is one HTTP call: the registered function, the raw body and
the headers. A case built to be wrong names the error ``field`` the answer
must report; a case that may be valid (a plausible mutation of a real
fixture) names none and is held to the general properties only:

- never a 5xx, always a JSON object with a ``status``;
- a 4xx is ``rejected`` with errors, each a non-empty ``field`` and ``message``;
- a known-wrong case never reaches Syskit Point; a 4xx that did reach it is
  Syskit Point's own refusal (field ``point``), never the bridge's;
- at most one Syskit Point call per case, and one only with a 2xx, or with
  Syskit Point's refusal.

Used by tests/test_hostile.py (CI-sized) and bench/fuzz.py (the long run).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from deskbridge.auth import sign_point_event
from deskbridge.jsonbody import plain_spaces
from deskbridge.model import workspace_type_from_text
from devtools.stack import SAMPLE_JIRA_FIELDS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROUTES = ("provision", "jira", "servicenow", "point_events")
APPROVAL_ROUTES = ("provision", "jira", "servicenow")

# The Jira field mapping the real fixtures are written for (as in test_approvals).
JIRA_FIELDS = SAMPLE_JIRA_FIELDS
# The owner the webhook fixture names without an e-mail; tests register this user with the Jira stand-in.
HIDDEN_OWNER = ("557058:8c9e5b7a-64a1-4e54-9f0b-2f1c3b2a9d10", "Hidden Harry", "harry@contoso.com")
ALLOWED_TEMPLATES = (7, 8, 9, 10)
MAX_BODY_BYTES = 262144  # BRIDGE_MAX_BODY_BYTES' default

BASES = {
    "provision": ("syskit_jira_custom_body.json", "syskit_servicenow_body.json"),
    "jira": ("jira_webhook_approved.json", "jira_automation_format.json", "jira_automation_jira_format.json"),
    "servicenow": ("servicenow_ritm.json",),
    "point_events": ("point_completed.json", "point_failed.json", "point_started.json"),
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


_LOADED = {name: load(name) for names in BASES.values() for name in names}


@dataclass(frozen=True)
class Case:
    route: str  # the registered function: provision, jira, servicenow, point_events
    body: bytes
    headers: dict[str, str]
    field: str | None = None  # the error field a wrong case must name; None: it may be valid
    statuses: tuple[int, ...] = ()  # the statuses allowed; empty: any below 500
    kind: str = ""
    sent_name: str | None = None  # the workspace name sent, when the case may be valid

    def describe(self) -> str:
        return f"{self.kind} {self.route} field={self.field} body={self.body[:300]!r} headers={self.headers}"


@dataclass
class Outcome:
    status: int
    mimetype: str
    body: Any
    point_calls: list[Any] = field(default_factory=list)


# == calling a function ========================================================


def sign_for(case_route: str, body: bytes, headers: dict[str, str], point_key: str) -> dict[str, str]:
    """Point events carry Syskit Point's signature (the stack configures the key), so the body is what is tested."""
    if case_route != "point_events":
        return headers
    return {"Signature": sign_point_event(body, point_key), "Algorithm": "HMACSHA256"} | headers


def call(functions: dict[str, Any], case: Case, point: Any, point_key: str) -> Outcome:
    """One call through the registered function, exactly as the host would make it."""
    import azure.functions as func

    before = len(point.provision_calls())
    headers = sign_for(case.route, case.body, case.headers, point_key)
    path = "point/events" if case.route == "point_events" else case.route
    request = func.HttpRequest("POST", f"http://localhost:7071/api/{path}", headers=headers, params={},
                               route_params={}, body=case.body)
    response = functions[case.route].get_user_function()(request)
    raw = response.get_body()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw
    return Outcome(response.status_code, response.mimetype, body, point.provision_calls()[before:])


# == the properties ==============================================================


def field_matches(reported: str, expected: str) -> bool:
    return reported == expected or reported.startswith((expected + "[", expected + "."))


def check(case: Case, outcome: Outcome) -> None:
    """Raise AssertionError when an answer breaks a property (see the module docstring)."""
    where = case.describe()
    status, body, calls = outcome.status, outcome.body, outcome.point_calls
    assert status < 500, f"{status} {body} for {where}"
    assert outcome.mimetype == "application/json", f"{outcome.mimetype} for {where}"
    assert isinstance(body, dict) and isinstance(body.get("status"), str), f"{body!r} for {where}"
    assert len(calls) <= 1, f"{len(calls)} Syskit Point calls for {where}"
    if case.statuses:
        assert status in case.statuses, f"{status} {body} (wanted {case.statuses}) for {where}"
    if 400 <= status < 500:
        assert body["status"] == "rejected", f"{body} for {where}"
        errors = body.get("errors")
        assert isinstance(errors, list) and errors, f"no errors in {body} for {where}"
        for error in errors:
            assert isinstance(error, dict), f"{error!r} for {where}"
            assert isinstance(error.get("field"), str) and error["field"], f"{error} for {where}"
            assert isinstance(error.get("message"), str) and error["message"], f"{error} for {where}"
        if calls:  # only Syskit Point itself may refuse what reached it
            assert [e["field"] for e in errors] == ["point"], f"{body} after a Point call for {where}"
    if case.field is not None:
        assert 400 <= status < 500, f"{status} {body} for wrong input {where}"
        assert not calls, f"Syskit Point was called for wrong input {where}"
        reported = [e["field"] for e in body["errors"]]
        assert any(field_matches(r, case.field) for r in reported), f"{reported} does not name {case.field}: {where}"
    if calls:
        assert status in (200, 201, 202) or status == 422, f"{status} {body} after a Point call for {where}"
        if status < 300 and case.sent_name is not None:
            assert calls[0].json()["displayName"] == case.sent_name.strip(), f"{calls[0].body!r} for {where}"


# == building blocks ===============================================================

SAFE_TEXT = st.characters(exclude_categories=("Cs",))  # any code point but a lone surrogate
NAME_TEXT = st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(SAFE_TEXT, max_size=24),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(SAFE_TEXT, max_size=8), inner, max_size=4),
    max_leaves=12,
)


def not_a(*types: type) -> st.SearchStrategy[Any]:
    """Any JSON value of none of these types (bool counts as its own type, not int)."""

    def wrong(value: Any) -> bool:
        if isinstance(value, bool):
            return bool not in types
        return not isinstance(value, types)

    return json_values.filter(wrong)


def encode(payload: Any, ascii_only: bool) -> bytes:
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8")


def set_path(payload: Any, path: tuple[str, ...], value: Any) -> Any:
    result = copy.deepcopy(payload)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


def del_path(payload: Any, path: tuple[str, ...]) -> Any:
    result = copy.deepcopy(payload)
    target = result
    for key in path[:-1]:
        target = target[key]
    target.pop(path[-1], None)
    return result


def bases(route: str) -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from(BASES[route]).map(lambda name: (name, copy.deepcopy(_LOADED[name])))


def _issue(name: str) -> tuple[str, ...]:
    """Where the issue sits in a Jira fixture: the Automation format has it at the top."""
    return () if name == "jira_automation_format.json" else ("issue",)


def _fresh_point_key(payload: Any) -> Any:
    """A new idempotency key, so each event is a first delivery (not a duplicate)."""
    if isinstance(payload, dict) and isinstance(payload.get("meta"), dict):
        payload["meta"]["idempotencyKey"] = str(uuid.uuid4())
    return payload


# Values that are wrong for a field whatever else the payload says.
def _bad_email() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["", "not-an-address", "@contoso.com", "olga@", "olga..owner@contoso.com", "a@b", "a b@c.de"]),
        st.text(SAFE_TEXT, min_size=1, max_size=30).filter(lambda s: "@" not in s),
    )


def _unicode_email() -> st.SearchStrategy[str]:
    """An address with a non-ASCII letter in it: Syskit Point wants plain UPNs."""
    letter = st.characters(min_codepoint=0xA1, exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
    return st.tuples(letter, st.sampled_from(["local", "domain"])).map(
        lambda t: f"j{t[0]}rgen@contoso.com" if t[1] == "local" else f"jurgen@b{t[0]}cher.example"
    )


_BOOL_WORDS = ("true", "yes", "1", "private", "on", "false", "no", "0", "public", "off", "")
bad_privacy = json_values.filter(
    lambda v: not isinstance(v, bool) and not (isinstance(v, str) and v.strip().lower() in _BOOL_WORDS)
)
bad_workspace_type = st.one_of(
    not_a(str).filter(lambda v: v is not None),
    st.text(SAFE_TEXT, min_size=1, max_size=30).filter(lambda s: workspace_type_from_text(s) is None),
)


def template_allowed(value: Any) -> bool:
    """Whether the bridge takes this templateId (the rule of model._template_id, with the stack's allowed ids)."""
    if value is None or value == "":
        return True  # the default template
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in ALLOWED_TEMPLATES
    if isinstance(value, float):
        return value.is_integer() and int(value) in ALLOWED_TEMPLATES
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,9}\s*", value):
        return int(value) in ALLOWED_TEMPLATES
    return False


bad_template = st.one_of(
    json_values, st.integers(), st.text(SAFE_TEXT, min_size=1, max_size=12),
    st.sampled_from(["07", "٧", " 8", "7.0", "1e1", "0x7", "+7", "-7", "99999999999"]),
).filter(lambda v: not template_allowed(v))
bad_template_text = bad_template.map(lambda v: v if isinstance(v, str) else json.dumps(v)).filter(
    lambda v: v != "" and not template_allowed(v)
)
bad_ticket_id = st.one_of(
    st.text(SAFE_TEXT, max_size=20).map(lambda s: s + "/"),
    st.text(st.characters(min_codepoint=0x41, max_codepoint=0x5A), min_size=129, max_size=400),
    st.sampled_from(["A/1", "A#1", "A?1", "A\\1", "A\x00B", "A\x85B", "A\x9fB", "A\x1bB", "A\x7fB"]),
)


def _bad_desired_url(text: str) -> bool:
    t = text.strip().lower()
    return bool(t) and not (re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", t) and "--" not in t and len(t) <= 100)


def _long(n_min: int, n_max: int) -> st.SearchStrategy[str]:
    """A long printable string (built by repetition: hypothesis draws long text slowly)."""
    return st.tuples(st.text(NAME_TEXT, min_size=1, max_size=8), st.integers(n_min, n_max)).map(
        lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]]
    ).filter(lambda s: len(s.strip()) >= n_min)


# == wrong cases, per route: (path relative to the payload, the field the answer names, values) ==

Mutation = tuple[tuple[str, ...], str, st.SearchStrategy[Any]]


def provision_wrong() -> list[Mutation]:
    return [
        (("displayName",), "displayName", not_a(str)),
        (("displayName",), "displayName", st.sampled_from(["", "   ", "Tab\there", "Line\nbreak", "Bell\x07"])),
        (("owners",), "owners", not_a(list, str).filter(lambda v: v is not None) | st.just(None)),
        (("owners",), "owners", st.lists(not_a(str), min_size=1, max_size=3)),
        (("owners",), "owners", st.lists(_bad_email(), min_size=1, max_size=3)),
        (("members",), "members", not_a(list, str).filter(lambda v: v is not None)),
        (("members",), "members", st.lists(_bad_email(), min_size=1, max_size=3)),
        (("description",), "description", not_a(str).filter(lambda v: v is not None)),
        (("comment",), "comment", not_a(str).filter(lambda v: v is not None)),
        (("metadata",), "metadata", not_a(dict).filter(lambda v: v is not None)),
        (("isPrivate",), "isPrivate", bad_privacy),
        (("templateId",), "templateId", bad_template),
        (("desiredUrl",), "desiredUrl", not_a(str).filter(lambda v: v is not None)),
        (("desiredUrl",), "desiredUrl", st.text(SAFE_TEXT, min_size=1, max_size=40).filter(_bad_desired_url)),
        (("workspaceType",), "workspaceType", bad_workspace_type),
        (("ticket",), "ticket", not_a(dict)),
        (("ticket",), "ticket.source", st.one_of(
            st.builds(lambda v: {"source": v, "id": "T-1"},
                      st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.integers())),
            st.builds(lambda v: {"source": v, "id": "T-1"}, st.text(SAFE_TEXT, min_size=1, max_size=40).filter(
                lambda s: s.strip() != "" and not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", s.strip().lower()))),
        )),
        (("ticket",), "ticket.id", st.builds(lambda v: {"source": "hr", "id": v}, bad_ticket_id)),
        (("ticket",), "ticket.callbackUrl", st.builds(
            lambda v: {"id": "T-2", "callbackUrl": v},
            st.text(SAFE_TEXT, min_size=1, max_size=40).filter(lambda s: not re.fullmatch(r"https://\S{1,2000}", s)),
        )),
    ]


def jira_wrong(name: str) -> list[Mutation]:
    issue = _issue(name)
    fields = (*issue, "fields")
    mutations: list[Mutation] = [
        ((*fields, "customfield_10054"), "displayName", st.one_of(
            st.just([]), st.just({}), st.dictionaries(st.sampled_from(["id", "self"]), st.text(max_size=5)),
            st.sampled_from(["", "   ", "Tab\there", "Bell\x07"]),
        )),
        ((*fields, "customfield_10060"), "owners", st.one_of(
            st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
            st.lists(st.integers() | st.booleans() | st.lists(st.integers(), max_size=1), min_size=1, max_size=3),
            st.lists(_bad_email().filter(lambda s: s.strip() and not re.search(r"[,;\s]", s)), min_size=1, max_size=2),
        )),
        ((*fields, "customfield_10061"), "members",
         st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))),
        ((*fields, "customfield_10070"), "workspaceType",
         st.text(SAFE_TEXT, min_size=1, max_size=30).filter(lambda s: workspace_type_from_text(s) is None).map(
             lambda s: {"value": s, "id": "10199"})),
        ((*fields, "customfield_10071"), "isPrivate",
         st.text(SAFE_TEXT, min_size=1, max_size=20).filter(
             lambda s: s.strip().lower() not in _BOOL_WORDS).map(lambda s: {"value": s})),
        ((*fields, "description"), "description", _long(4001, 6000)),
    ]
    if issue:
        mutations += [
            (("issue",), "issue", not_a(dict)),
            (("issue", "key"), "issue.key", not_a(str)),
            (("issue", "key"), "issue.key", bad_ticket_id),
            (("issue", "fields"), "issue.fields", not_a(dict)),
        ]
    else:
        mutations += [
            (("key",), "issue.key", not_a(str)),
            (("key",), "issue.key", bad_ticket_id),
            (("fields",), "issue", not_a(dict)),
        ]
    return mutations


def servicenow_wrong() -> list[Mutation]:
    variables = ("variables",)
    return [
        (("number",), "number", not_a(str)),
        (("number",), "number", bad_ticket_id),
        (("number",), "number", st.sampled_from(["", "   "])),
        (("sys_id",), "sys_id", not_a(str).filter(lambda v: v is not None)),
        (("sys_id",), "sys_id", st.text(SAFE_TEXT, max_size=40).filter(lambda s: not re.fullmatch(r"[0-9a-f]{32}", s))),
        (("variables",), "variables", not_a(dict)),
        (("unresolved",), "unresolved", not_a(list)),
        (("unresolved",), "unresolved", st.lists(not_a(str), min_size=1, max_size=3)),
        (("unresolved",), "owners", st.lists(st.text(SAFE_TEXT, max_size=32), min_size=1, max_size=3)),
        (("owners",), "owners", not_a(list, str)),
        (("owners",), "owners", st.lists(_bad_email(), min_size=1, max_size=3)),
        (("members",), "members", not_a(list, str).filter(lambda v: v is not None)),
        ((*variables, "site_name"), "displayName", not_a(str)),
        ((*variables, "site_description"), "description", not_a(str).filter(lambda v: v is not None)),
        ((*variables, "template_id"), "templateId", bad_template_text),
        ((*variables, "is_private"), "isPrivate", bad_privacy.filter(lambda v: v is not None and v != "")),
        ((*variables, "workspace_type"), "workspaceType", bad_workspace_type.filter(lambda v: v != "")),
    ]


def point_wrong() -> list[Mutation]:
    return [
        (("content",), "content.name", not_a(dict)),
        (("content", "name"), "content.name", not_a(str)),
        (("content", "name"), "content.name", st.sampled_from(["", "  ", "\t"])),
        (("content", "type"), "content.type", json_values.filter(
            lambda v: not (isinstance(v, str) and v in ("MicrosoftTeams", "M365Group", "SharePointSiteCollection",
                                                        "YammerCommunity")))),
        (("meta",), "meta.idempotencyKey", not_a(dict)),
        (("meta", "idempotencyKey"), "meta.idempotencyKey", not_a(str)),
        (("meta", "idempotencyKey"), "meta.idempotencyKey", st.sampled_from(["", "   "]) | _long(201, 400)),
    ]


def _mutations(route: str, name: str) -> list[Mutation]:
    if route == "provision":
        return provision_wrong()
    if route == "jira":
        return jira_wrong(name)
    if route == "servicenow":
        return servicenow_wrong()
    return point_wrong()


@st.composite
def wrong_values(draw: st.DrawFn, route: str) -> Case:
    """One field of a real fixture replaced by a value of the wrong type or shape."""
    name, payload = draw(bases(route))
    path, expected, values = draw(st.sampled_from(_mutations(route, name)))
    payload = set_path(_fresh_point_key(payload) if route == "point_events" else payload, path, draw(values))
    status = (422,) if expected == "owners" and path == ("unresolved",) else ()
    return Case(route, encode(payload, draw(st.booleans())), {"Content-Type": "application/json"}, expected, status,
                "wrong-value")


_REQUIRED: dict[str, Callable[[str], list[tuple[tuple[str, ...], str]]]] = {
    "provision": lambda name: [(("displayName",), "displayName"), (("owners",), "owners")],
    "jira": lambda name: (
        [(("issue",), "issue"), (("issue", "key"), "issue.key"), (("issue", "fields"), "issue.fields"),
         (("issue", "fields", "customfield_10054"), "displayName"),
         (("issue", "fields", "customfield_10060"), "owners")]
        if _issue(name) else
        [(("key",), "issue"), (("fields",), "issue"), (("fields", "customfield_10054"), "displayName"),
         (("fields", "customfield_10060"), "owners")]
    ),
    "servicenow": lambda name: [(("number",), "number"), (("variables", "site_name"), "displayName"),
                                (("owners",), "owners")],
    "point_events": lambda name: [(("content",), "content.name"), (("content", "name"), "content.name"),
                                  (("content", "type"), "content.type"), (("meta",), "meta.idempotencyKey"),
                                  (("meta", "idempotencyKey"), "meta.idempotencyKey")],
}


@st.composite
def missing_fields(draw: st.DrawFn, route: str) -> Case:
    name, payload = draw(bases(route))
    path, expected = draw(st.sampled_from(_REQUIRED[route](name)))
    payload = del_path(payload, path)
    if route == "point_events" and path != ("meta",) and path != ("meta", "idempotencyKey"):
        payload = _fresh_point_key(payload)
    return Case(route, encode(payload, True), {"Content-Type": "application/json"}, expected, (400,), "missing")


_HUGE: dict[str, Callable[[str], list[tuple[tuple[str, ...], str, st.SearchStrategy[Any]]]]] = {
    "provision": lambda name: [
        (("displayName",), "displayName", _long(257, 3000)),
        (("description",), "description", _long(4001, 20000)),
        (("comment",), "comment", _long(4001, 20000)),
        (("desiredUrl",), "desiredUrl", st.integers(101, 2000).map(lambda n: "a" * n)),
        (("owners",), "owners", st.integers(250, 5000).map(lambda n: ["o" * n + "@contoso.com"])),
        (("members",), "members", st.integers(250, 5000).map(lambda n: ["m" * n + "@contoso.com"])),
        (("ticket",), "ticket.id", st.integers(129, 5000).map(lambda n: {"source": "hr", "id": "T" * n})),
        (("metadata",), "metadata", st.integers(17000, 60000).map(lambda n: {"notes": "x" * n})),
    ],
    "jira": lambda name: [
        ((*_issue(name), "fields", "customfield_10054"), "displayName", _long(257, 3000)),
        ((*_issue(name), "fields", "description"), "description", _long(4001, 20000)),
        ((*_issue(name), "key"), "issue.key",
         st.integers(129, 3000).map(lambda n: "HR" * n + "-1")),
    ],
    "servicenow": lambda name: [
        (("variables", "site_name"), "displayName", _long(257, 3000)),
        (("variables", "site_description"), "description", _long(4001, 20000)),
        (("number",), "number", st.integers(129, 3000).map(lambda n: "RITM" + "0" * n)),
    ],
    "point_events": lambda name: [
        (("meta", "idempotencyKey"), "meta.idempotencyKey", _long(201, 3000)),
    ],
}


@st.composite
def huge_strings(draw: st.DrawFn, route: str) -> Case:
    """A string field past its limit (the body stays under BRIDGE_MAX_BODY_BYTES)."""
    name, payload = draw(bases(route))
    path, expected, values = draw(st.sampled_from(_HUGE[route](name)))
    payload = set_path(payload, path, draw(values))
    return Case(route, encode(payload, draw(st.booleans())), {"Content-Type": "application/json"}, expected, (400,),
                "huge-string")


_OWNER_PATHS = {
    "provision": lambda name: (("owners",), "owners"),
    "jira": lambda name: ((*_issue(name), "fields", "customfield_10060"), "owners"),
    "servicenow": lambda name: (("owners",), "owners"),
}


@st.composite
def unicode_addresses(draw: st.DrawFn, route: str) -> Case:
    """An owner address with a non-ASCII letter: refused by name, never sent to Syskit Point."""
    name, payload = draw(bases(route))
    path, expected = _OWNER_PATHS[route](name)
    address = draw(_unicode_email())
    good = ["olga.owner@contoso.com"]
    if route == "jira":
        people = [{"accountId": "1", "displayName": "Jürgen", "emailAddress": address}]
        value = draw(st.permutations(people + [{"accountId": "2", "emailAddress": good[0]}]))
    else:
        value = draw(st.permutations([address, *good]))
    payload = set_path(payload, path, list(value))
    return Case(route, encode(payload, draw(st.booleans())), {"Content-Type": "application/json"}, expected, (400,),
                "unicode-address")


@st.composite
def bad_idempotency_keys(draw: st.DrawFn, route: str = "provision") -> Case:
    """/api/provision names the ticket after the Idempotency-Key header when the body names none."""
    _, payload = draw(bases("provision"))
    payload.pop("ticket", None)
    key = draw(bad_ticket_id.filter(lambda k: k.strip() and k == k.strip()))
    headers = {"Content-Type": "application/json", draw(st.sampled_from(["Idempotency-Key", "idempotency-key"])): key}
    return Case("provision", encode(payload, True), headers, "ticket.id", (400,), "idempotency-key")


# Signing secrets the bridge is configured with when forged signatures are tried (see signing_settings).
SIGNING_SECRET_NAMES = {"jira": "fuzz-jira-hook", "servicenow": "fuzz-servicenow-signing",
                        "provision": "fuzz-provision-signing"}


def signing_settings() -> dict[str, str]:
    return {"JIRA_WEBHOOK_SECRET_NAME": SIGNING_SECRET_NAMES["jira"],
            "SERVICENOW_SIGNING_SECRET_NAME": SIGNING_SECRET_NAMES["servicenow"],
            "PROVISION_SIGNING_SECRET_NAME": SIGNING_SECRET_NAMES["provision"]}


_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E) | SAFE_TEXT, max_size=80)


@st.composite
def forged_signatures(draw: st.DrawFn, route: str) -> Case:
    """A signed route called without the secret: missing, malformed, random or stale signature headers."""
    _, payload = draw(bases(route))
    body = encode(payload, True)
    if route == "jira":
        headers = draw(st.one_of(
            st.just({}),
            st.builds(lambda v: {"X-Hub-Signature": v}, st.one_of(
                _HEADER_TEXT, st.from_regex(r"sha256=[0-9a-fA-F]{64}", fullmatch=True),
                st.from_regex(r"sha1=[0-9a-f]{40}", fullmatch=True))),
        ))
    else:
        signature = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=3).map(
            lambda sigs: " ".join("v1," + base64.b64encode(sig).decode() for sig in sigs))
        headers = draw(st.fixed_dictionaries({}, optional={
            "webhook-id": _HEADER_TEXT | st.uuids().map(lambda u: f"msg_{u.hex}"),
            "webhook-timestamp": _HEADER_TEXT | st.integers(-3600, 3600).map(lambda skew: str(int(time.time()) + skew)),
            "webhook-signature": _HEADER_TEXT | signature,
        }))
    return Case(route, body, {"Content-Type": "application/json"} | headers, "signature", (401,), "forged-signature")


# == wrong bodies, whatever the route ===============================================


def _json_object(raw: bytes) -> bool:
    """Whether the bridge reads this as a JSON object (it reads Unicode spaces between tokens as spaces)."""
    try:
        return isinstance(json.loads(plain_spaces(raw.decode("utf-8"))), dict)
    except (ValueError, RecursionError):
        return False


@st.composite
def junk_bodies(draw: st.DrawFn, route: str) -> Case:
    """Bytes or text that are not a JSON object."""
    raw = draw(st.one_of(
        st.binary(max_size=600),
        st.text(SAFE_TEXT, max_size=300).map(lambda s: s.encode("utf-8")),
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"", b"   ", b"{", b"}", b"{'a': 1}", b"{a: 1}", b"[1,2", b"null", b"\xef\xbb\xbf",
                         b'{"a": 1,}', b'{"a" 1}', b"<xml/>", b"a=1&b=2", b"\x00\x00\x00{"]),
    ).filter(lambda b: not _json_object(b)))
    return Case(route, raw, {"Content-Type": "application/json"}, "body", (400,), "junk")


_BAD_UTF8 = [b"\xff", b"\xfe", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xc0\xaf",
             b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80", b"\x80"]


@st.composite
def invalid_utf8(draw: st.DrawFn, route: str) -> Case:
    """A real fixture with an invalid UTF-8 sequence anywhere in it."""
    _, payload = draw(bases(route))
    raw = encode(_fresh_point_key(payload) if route == "point_events" else payload, draw(st.booleans()))
    at = draw(st.integers(0, len(raw)))
    raw = raw[:at] + draw(st.sampled_from(_BAD_UTF8)) + raw[at:]
    return Case(route, raw, {"Content-Type": "application/json; charset=utf-8"}, "body", (400,), "invalid-utf8")


@st.composite
def deep_nesting(draw: st.DrawFn, route: str) -> Case:
    _, payload = draw(bases(route))
    depth = draw(st.integers(33, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"b":', "}]")]))
    raw = encode(payload, True)
    nested = (opener * depth + "1" + closer * depth).encode()
    raw = raw[:-1] + b', "nested": ' + nested + b"}"
    return Case(route, raw, {"Content-Type": "application/json"}, "body", (400,), "deep-nesting")


@st.composite
def duplicate_keys(draw: st.DrawFn, route: str) -> Case:
    """A key given twice in an object of a real fixture (the second value may even be equal)."""
    _, payload = draw(bases(route))
    if route == "point_events":
        payload = _fresh_point_key(payload)
    objects = [((), payload)]
    for key, value in payload.items():
        if isinstance(value, dict) and value:
            objects.append(((key,), value))
    path, target = draw(st.sampled_from(objects))
    key = draw(st.sampled_from(sorted(target)))
    again = draw(st.one_of(st.just(target[key]), json_values))
    inner = json.dumps(target)[:-1] + ", " + json.dumps(key) + ": " + json.dumps(again) + "}"
    marker = "__DUPLICATE__"
    raw = json.dumps(set_path(payload, path, marker) if path else marker).replace(f'"{marker}"', inner)
    return Case(route, raw.encode("utf-8"), {"Content-Type": "application/json"}, key[:100], (400,), "duplicate-key")


_BAD_MEDIA = ["text/plain", "text/html", "application/xml", "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=----x", "application/octet-stream", "image/png", "application/jsonp",
              "application/json5", "json", "*/*", "text/javascript", "application/x-json-stream"]


@st.composite
def wrong_content_types(draw: st.DrawFn, route: str) -> Case:
    """A valid body sent as something other than JSON."""
    _, payload = draw(bases(route))
    media = draw(st.one_of(
        st.sampled_from(_BAD_MEDIA),
        st.from_regex(r"[a-z]{1,10}/[a-z0-9.-]{1,15}", fullmatch=True).filter(
            lambda m: m not in ("application/json", "application/json-patch+json", "text/json")
            and not m.endswith("+json")),
    ))
    name = draw(st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE"]))
    body = encode(_fresh_point_key(payload) if route == "point_events" else payload, True)
    return Case(route, body, {name: media}, "Content-Type", (415,), "content-type")


@st.composite
def unreadable_values(draw: st.DrawFn, route: str) -> Case:
    """JSON the parser must refuse: NaN, Infinity, 1e400, 5000-digit numbers, lone surrogates."""
    _, payload = draw(bases(route))
    payload = _fresh_point_key(payload) if route == "point_events" else payload
    raw = encode(payload, True)
    value, expected = draw(st.sampled_from([
        (b"NaN", "body"), (b"Infinity", "body"), (b"-Infinity", "body"), (b"1e400", "body"), (b"-1e99999", "body"),
        (b"1" * 5000, "body"), (b"-" + b"9" * 401, "body"), (b"0." + b"1" * 500, "body"),
        (b'"\\ud800"', "note"), (b'"abc\\udfff"', "note"), (b'["ok", "\\udbff x"]', "note[1]"),
        (b'{"\\ud800": 1}', "body"), (b'{"inner": "\\uDC00"}', "note.inner"),
    ]))
    raw = raw[:-1] + b', "note": ' + value + b"}"
    return Case(route, raw, {"Content-Type": "application/json"}, expected, (400,), "unreadable-value")


@st.composite
def oversized(draw: st.DrawFn, route: str, limit: int = MAX_BODY_BYTES) -> Case:
    """A body one byte or more past BRIDGE_MAX_BODY_BYTES: refused (413) before it is parsed."""
    _, payload = draw(bases(route))
    raw = encode(payload, True)
    extra = draw(st.integers(1, 4096))
    padding = draw(st.sampled_from([b" ", b"\n", b"x"]))
    body = raw[:-1] + padding * (limit - len(raw) + extra) + b"}"
    return Case(route, body, {"Content-Type": "application/json"}, "body", (413,), "oversized")


def every_wrong_body(route: str) -> st.SearchStrategy[Case]:
    return st.one_of(
        junk_bodies(route), invalid_utf8(route), deep_nesting(route), duplicate_keys(route),
        wrong_content_types(route), unreadable_values(route),
    )


def every_wrong_case(route: str) -> st.SearchStrategy[Case]:
    strategies = [every_wrong_body(route), wrong_values(route), missing_fields(route), huge_strings(route)]
    if route in APPROVAL_ROUTES:
        strategies.append(unicode_addresses(route))
    if route == "provision":
        strategies.append(bad_idempotency_keys())
    return st.one_of(*strategies)


# == plausible mutations: may be valid, may not ======================================

_NAMES = st.one_of(
    st.sampled_from(["Project Apollo", "Café Münster", "東京オフィス", "Équipe R&D", "Zürich – Finance", "نماذج",
                     "  padded name  ", "a", "🚀 Launch", "Ω", "x" * 256, "--", "Nom\u00a0insécable"]),
    st.text(NAME_TEXT, min_size=1, max_size=80),
)
_EMAILS = st.sampled_from(["olga.owner@contoso.com", "MARK.member@Contoso.com", "o'neil@contoso.co.uk",
                           "first+tag@sub.contoso.com", "not-an-address", "jürgen@contoso.com", "a@b",
                           "ann.reporter@contoso.com"])
_TYPES = st.sampled_from(["teams", "Microsoft Teams", "SharePoint site", "groups", "Viva Engage community",
                          "yammer", "site", "spaceship", "", "TEAMS"])
_TEMPLATES = st.sampled_from([7, 8, 9, 10, "7", " 8 ", 11, 0, -1, "", None, 7.0, "seven"])
_PRIVACY = st.sampled_from([True, False, "true", "Private", "public", "no", "maybe", None, ""])


@st.composite
def plausible(draw: st.DrawFn, route: str) -> Case:
    """A real fixture with a few fields changed to values a desk might send; it may or may not be valid."""
    name, payload = draw(bases(route))
    sent_name: str | None = None
    ticket = str(draw(st.uuids()))[:18]
    if route == "provision":
        changes = draw(st.fixed_dictionaries({}, optional={
            "displayName": _NAMES, "owners": st.lists(_EMAILS, max_size=3), "members": st.lists(_EMAILS, max_size=3),
            "workspaceType": _TYPES, "templateId": _TEMPLATES, "isPrivate": _PRIVACY,
            "description": st.text(SAFE_TEXT, max_size=60), "desiredUrl": st.sampled_from(["", "ok-url", "Bad URL"]),
            "metadata": st.dictionaries(st.text(SAFE_TEXT, max_size=6), scalars, max_size=3),
        }))
        payload.update(changes)
        payload["ticket"] = {"source": "fuzz", "id": ticket}
        if isinstance(payload.get("displayName"), str):
            sent_name = payload["displayName"]
    elif route == "jira":
        fields = payload["issue"]["fields"] if _issue(name) else payload["fields"]
        key_at = payload["issue"] if _issue(name) else payload
        key_at["key"] = "FZ-" + str(draw(st.integers(1, 10**9)))
        if draw(st.booleans()):
            fields["customfield_10054"] = draw(_NAMES)
        if draw(st.booleans()):
            fields["customfield_10060"] = [{"accountId": str(i), "displayName": "P", "emailAddress": e}
                                           for i, e in enumerate(draw(st.lists(_EMAILS, max_size=3)))]
        if draw(st.booleans()):
            fields["customfield_10070"] = {"value": draw(_TYPES)}
        if draw(st.booleans()):
            fields["customfield_10071"] = draw(st.sampled_from([None, {"value": "Private"}, {"value": "Public"},
                                                                {"value": "maybe"}]))
        if isinstance(fields.get("customfield_10054"), str):
            sent_name = fields["customfield_10054"]
    elif route == "servicenow":
        payload["number"] = "RITM" + str(draw(st.integers(1, 10**9)))
        variables = payload["variables"]
        changes = draw(st.fixed_dictionaries({}, optional={
            "site_name": _NAMES, "workspace_type": _TYPES, "template_id": _TEMPLATES.map(
                lambda v: v if v is None or isinstance(v, str) else str(v)), "is_private": _PRIVACY,
        }))
        variables.update(changes)
        if draw(st.booleans()):
            payload["owners"] = draw(st.lists(_EMAILS, max_size=3))
        if isinstance(variables.get("site_name"), str):
            sent_name = variables["site_name"]
    else:
        payload = _fresh_point_key(payload)
        if draw(st.booleans()):
            payload["content"]["name"] = draw(_NAMES)
        if draw(st.booleans()):
            payload["content"]["type"] = draw(st.sampled_from(
                ["MicrosoftTeams", "M365Group", "SharePointSiteCollection", "YammerCommunity", "Team"]))
        if draw(st.booleans()):
            payload["type"] = draw(st.sampled_from(
                ["ProvisioningStarted", "ProvisioningCompleted", "ProvisioningFailed", "Other", ""]))
    return Case(route, encode(payload, draw(st.booleans())), {"Content-Type": "application/json"}, None, (),
                "plausible", sent_name)


def cases(route: str) -> st.SearchStrategy[Case]:
    """Everything for one route: mostly wrong cases (fast), some plausible ones (may reach Syskit Point)."""
    return st.one_of(every_wrong_case(route), every_wrong_case(route), every_wrong_case(route), plausible(route))


def now() -> int:
    return int(time.time())
