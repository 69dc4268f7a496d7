"""Validation and mapping rules of the provisioning request (pure, no I/O)."""

import pytest

from deskbridge.model import FieldError, InvalidRequest, Limits, Policy, is_email, name_key, slugify, validate

POLICY = Policy(allowed_template_ids=frozenset({7, 8}), default_template_ids={"": 7}, default_workspace_type="teams")


def draft(**changes):
    base = {"displayName": "Project Apollo", "owners": ["olga@contoso.com"]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def errors_of(value, policy=POLICY):
    with pytest.raises(InvalidRequest) as caught:
        validate(value, policy)
    return {e.field: e.message for e in caught.value.errors}


def test_minimal_draft_gets_defaults():
    request = validate(draft(), POLICY)
    assert request.point_body() == {
        "templateId": 7, "displayName": "Project Apollo", "desiredUrl": "project-apollo",
        "owners": ["olga@contoso.com"], "members": [], "description": "", "comment": "", "metadata": {},
        "isPrivate": False,
    }
    assert request.workspace_type == "teams"


@pytest.mark.parametrize("name, slug", [
    ("Project Apollo", "project-apollo"),
    ("  R&D   -- Lab #2 ", "rd-lab-2"),
    ("Café Ünïcode", "cafe-unicode"),
    ("snake_case name", "snake-case-name"),
    ("a---b", "a-b"),
])
def test_slug_rule(name, slug):
    assert slugify(name) == slug


def test_display_name_rules():
    assert errors_of(draft(displayName=...))["displayName"] == "is required"
    assert "at most 256" in errors_of(draft(displayName="x" * 257))["displayName"]
    assert "control characters" in errors_of(draft(displayName="bad\x07name"))["displayName"]
    assert errors_of(draft(displayName=42))["displayName"] == "must be a string"
    assert validate(draft(displayName="x" * 256), POLICY).display_name == "x" * 256


def test_name_without_letters_needs_a_url():
    assert "cannot be derived" in errors_of(draft(displayName="日本語"))["desiredUrl"]
    assert validate(draft(displayName="日本語", desiredUrl="japan-team"), POLICY).desired_url == "japan-team"


def test_desired_url_checked_and_lower_cased():
    assert validate(draft(desiredUrl="HR-42"), POLICY).desired_url == "hr-42"
    for bad in ("has space", "-edge", "edge-", "a--b", "ünï", "x" * 101):
        assert "desiredUrl" in errors_of(draft(desiredUrl=bad)), bad


def test_people_rules():
    request = validate(draft(owners=["Olga@Contoso.com", "olga@contoso.com", "ivan@contoso.com"],
                             members=["IVAN@contoso.com", "mark@contoso.com", "Mark@contoso.com"]), POLICY)
    assert request.owners == ("Olga@Contoso.com", "ivan@contoso.com")  # first spelling kept
    assert request.members == ("mark@contoso.com",)  # an owner is not also a member
    assert "at least one owner" in errors_of(draft(owners=[]))["owners"]
    assert "not a valid e-mail" in errors_of(draft(owners=["olga@contoso.com", ""]))["owners[1]"]
    assert "not a valid e-mail" in errors_of(draft(members=["not-an-address"]))["members[0]"]
    assert errors_of(draft(owners="olga@contoso.com; x"))["owners[1]"]
    assert errors_of(draft(members={"a": 1}))["members"] == "must be a list of e-mail addresses"
    assert "must be an e-mail address" in errors_of(draft(members=[1]))["members[0]"]


def test_people_limits():
    policy = Policy(default_template_ids={"": 7}, limits=Limits(max_owners=2, max_members=3))
    assert "at most 2" in errors_of(draft(owners=[f"o{i}@contoso.com" for i in range(3)]), policy)["owners"]
    assert "at most 3" in errors_of(draft(members=[f"m{i}@contoso.com" for i in range(4)]), policy)["members"]


@pytest.mark.parametrize("address, valid", [
    ("olga@contoso.com", True), ("o.l+tag@sub.contoso.co.uk", True), ("olga@contoso", False),
    ("olga@@contoso.com", False), ("ol ga@contoso.com", False), ("olga@-contoso.com", False),
    ("a..b@contoso.com", False), ("ölga@contoso.com", False), ("x" * 250 + "@c.com", False),
])
def test_email_rule(address, valid):
    assert is_email(address) is valid


def test_template_rules():
    assert validate(draft(templateId="8"), POLICY).template_id == 8
    assert "not allowed here" in errors_of(draft(templateId=99))["templateId"]
    for bad in ("seven", True, -1, 1.5, [7]):
        assert errors_of(draft(templateId=bad))["templateId"] == "must be a positive whole number", bad
    no_default = Policy()
    assert "is required" in errors_of(draft(), no_default)["templateId"]
    assert validate(draft(templateId=12345), no_default).template_id == 12345  # no list: any template


def test_workspace_type_rules():
    for text, expected in (("Microsoft Teams", "teams"), ("SharePoint site", "sites"), ("groups", "groups"),
                           ("Viva Engage community", "yammer"), ("YAMMER", "yammer")):
        assert validate(draft(workspaceType=text), POLICY).workspace_type == expected
    assert "must be one of" in errors_of(draft(workspaceType="planner"))["workspaceType"]
    assert "must be one of" in errors_of(draft(workspaceType=3))["workspaceType"]


def test_privacy_and_metadata_rules():
    assert validate(draft(isPrivate="true"), POLICY).is_private is True
    assert validate(draft(isPrivate="false"), POLICY).is_private is False
    assert validate(draft(isPrivate=True), POLICY).is_private is True
    assert errors_of(draft(isPrivate="maybe"))["isPrivate"] == "must be true or false"
    assert errors_of(draft(metadata=[1]))["metadata"] == "must be an object"
    assert validate(draft(metadata={"costCenter": "42"}), POLICY).metadata == {"costCenter": "42"}
    assert "larger than" in errors_of(draft(metadata={"x": "y" * 20000}))["metadata"]


def test_every_problem_is_reported_at_once():
    found = errors_of({"displayName": "", "owners": ["nope"], "templateId": "x", "isPrivate": 3})
    assert set(found) == {"displayName", "owners[0]", "templateId", "isPrivate"}


def test_name_key_matches_point_events_loosely():
    assert name_key("  Project   APOLLO ") == name_key("project apollo")


def test_default_template_per_workspace_type():
    policy = Policy(default_template_ids={"sites": 8, "": 7})
    assert validate(draft(workspaceType="sites"), policy).template_id == 8
    assert validate(draft(workspaceType="groups"), policy).template_id == 7
    only_teams = Policy(default_template_ids={"teams": 7})
    assert "no default template for sites" in errors_of(draft(workspaceType="sites"), only_teams)["templateId"]


def test_template_id_digits_are_ascii():
    assert errors_of(draft(templateId="\u0667"))["templateId"] == "must be a positive whole number"


def test_problems_found_apart_are_refused_together():
    """Intake's rule for every error at once: 400 when any is the body's; one field is named once."""
    hidden = InvalidRequest([FieldError("owners", "no e-mail address visible for: Hidden Harry")], 422)
    body = InvalidRequest([FieldError("ticket.callbackUrl", "must be an https:// URL")])
    assert InvalidRequest.joined([hidden]).http_status == 422
    joined = InvalidRequest.joined([hidden, body])
    assert joined.http_status == 400 and [e.field for e in joined.errors] == ["owners", "ticket.callbackUrl"]
    validation = InvalidRequest([FieldError("owners", "at least one owner with an e-mail address is required"),
                                 FieldError("owners[1]", "'x' is not a valid e-mail address"),
                                 FieldError("templateId", "must be a positive whole number")])
    assert [e.field for e in validation.beyond(joined.errors)] == ["templateId"]
