"""One version, in deskbridge.__version__; every copy of it agrees, and the changelog has its entry."""

from __future__ import annotations

import json
import re
import tomllib

from conftest import ROOT

import deskbridge


def test_every_copy_of_the_version_is_the_package_version():
    version = deskbridge.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == version
    assert json.loads((ROOT / "openapi.json").read_text())["info"]["version"] == version
    connector = json.loads((ROOT / "connectors" / "power-automate" / "apiDefinition.swagger.json").read_text())
    assert connector["info"]["version"] == version


def test_the_changelog_has_an_entry_for_this_release_and_names_its_new_settings():
    from deskbridge.settings import SETTINGS

    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", changelog, re.M)
    assert releases[0] == deskbridge.__version__ and len(releases) == len(set(releases))
    entry = changelog.split(f"## {releases[0]}", 1)[1].split("\n## ", 1)[0]
    for name in ("BRIDGE_RECORD_RETENTION_DAYS", "BRIDGE_OUTCOME_OVERDUE_SECONDS"):
        assert f"`{name}`" in entry and name in {s.name for s in SETTINGS}


def test_health_and_every_structured_line_carry_it(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    status, body = bridge.http("health", method="GET")
    assert (status, body) == (200, {"status": "ok", "version": deskbridge.__version__})
    bridge.http("provision", json.loads((ROOT / "tests" / "fixtures" / "syskit_jira_custom_body.json").read_text()))
    lines = [r.getMessage() for r in caplog.records if getattr(r, "bridge_event", "")]
    assert lines and all(line.endswith(f'"version":"{deskbridge.__version__}"}}') for line in lines)
