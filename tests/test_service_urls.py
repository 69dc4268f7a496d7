"""POINT_URL, JIRA_URL and SERVICENOW_URL carry credentials: https only, http:// to loopback for local runs
(issue 21, item 8). A plain-http URL is a configuration error naming the setting: 503, and doctor says so."""

from __future__ import annotations

import pytest
from conftest import fixture

from deskbridge import doctor
from deskbridge.settings import ConfigurationError, Settings

SERVICE_URLS = {"POINT_URL": "point_url", "JIRA_URL": "jira_url", "SERVICENOW_URL": "servicenow_url"}


@pytest.mark.parametrize("setting", SERVICE_URLS)
@pytest.mark.parametrize(
    "value",
    [
        "http://contoso.point.syskit.com",
        "HTTP://contoso.atlassian.net",
        "ftp://contoso.service-now.com",
        "contoso.atlassian.net",
        "https://",
        "http://127.0.0.1.evil.example",
        "http://localhost@evil.example",
        "http://localhost.evil.example:80",
        "http://10.0.0.5:8080",
        "http://[fe80::1]/",
    ],
)
def test_anything_but_https_or_loopback_http_is_refused_naming_the_setting(setting, value):
    with pytest.raises(ConfigurationError) as refused:
        getattr(Settings({setting: value}), SERVICE_URLS[setting])
    assert refused.value.setting == setting and refused.value.problem.startswith("must be an https:// URL")
    assert value == "https://" or value not in str(refused.value)


@pytest.mark.parametrize("setting", SERVICE_URLS)
@pytest.mark.parametrize(
    "value",
    [
        "https://contoso.atlassian.net",
        "https://contoso.service-now.com/",
        "http://127.0.0.1:8443",
        "http://localhost:7071/",
        "http://[::1]:8080",
        "http://127.0.0.2",
    ],
)
def test_https_and_loopback_http_are_accepted(setting, value):
    assert getattr(Settings({setting: value}), SERVICE_URLS[setting]) == value.rstrip("/")


def test_a_plain_http_point_url_is_a_503_naming_it_and_nothing_is_sent(bridge):
    bridge.configure(POINT_URL="http://contoso.point.syskit.com")
    status, answer = bridge.http("provision", fixture("syskit_jira_custom_body.json"))
    assert status == 503, answer
    assert [e["field"] for e in answer["errors"]] == ["POINT_URL"]
    assert bridge.stack.point.calls == []


def test_a_plain_http_desk_url_is_a_503_naming_it_on_its_route(bridge):
    bridge.configure(JIRA_URL="http://contoso.atlassian.net")
    status, answer = bridge.http("jira", fixture("jira_webhook_approved.json"))
    assert status == 503 and [e["field"] for e in answer["errors"]] == ["JIRA_URL"], answer
    bridge.configure(JIRA_URL=bridge.stack.jira.url, SERVICENOW_URL="http://contoso.service-now.com")
    status, answer = bridge.http("servicenow", fixture("servicenow_ritm.json"))
    assert status == 503 and [e["field"] for e in answer["errors"]] == ["SERVICENOW_URL"], answer
    assert bridge.stack.point.calls == [] and bridge.stack.jira.calls == [] and bridge.stack.servicenow.calls == []


def test_doctor_names_each_plain_http_url(bridge):
    bridge.configure(
        POINT_URL="http://contoso.point.syskit.com",
        JIRA_URL="http://contoso.atlassian.net",
        SERVICENOW_URL="http://contoso.service-now.com",
    )
    settings = next(o for o in doctor.run_checks(bridge.runtime) if o.name == "settings")
    assert settings.state == doctor.FAIL
    for name in SERVICE_URLS:
        assert f"{name} must be an https:// URL" in settings.message
    assert "contoso" not in settings.message  # named, never shown


def test_the_local_stack_is_https_and_passes(bridge):
    """The stand-ins serve https on 127.0.0.1, so the local stack's settings pass as they are."""
    s = Settings(bridge.stack.settings)
    assert [getattr(s, attribute) for attribute in SERVICE_URLS.values()] == [
        bridge.stack.point.url,
        bridge.stack.jira.url,
        bridge.stack.servicenow.url,
    ]
