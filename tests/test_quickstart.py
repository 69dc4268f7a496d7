"""docs/quickstart.md: few steps, each a command or a named screen, and every name in it real.

The counts are the issue's bar (at most 12 steps for Jira, 14 for ServiceNow). The values the quickstart
sets must be what the template and setup read: a setting of the bridge (the settings table), a value setup
reads (DESKBRIDGE_*), or a secret value the template's parameters take (infra/main.parameters.json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from deskbridge import cli
from deskbridge.settings import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
SETUP_VALUES = {"DESKBRIDGE_ADMIN_CLIENT_ID"}


def section(title: str) -> str:
    return QUICKSTART.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def steps(text: str) -> dict[int, str]:
    """Each numbered step (``N.`` at the start of a line, ``N. to M.`` for a range), with its text."""
    found: dict[int, str] = {}
    parts = re.split(r"^(\d+)\.(?: to (\d+)\.)? ", text, flags=re.MULTILINE)
    for index in range(1, len(parts), 3):
        first, last, body = int(parts[index]), parts[index + 1], parts[index + 2]
        for number in range(first, int(last or first) + 1):
            found[number] = body
    return found


def test_the_quickstart_is_at_most_12_steps_for_jira_and_14_for_servicenow():
    jira, servicenow = steps(section("Jira Service Management")), steps(section("ServiceNow"))
    assert sorted(jira) == list(range(1, 13)) and sorted(servicenow) == list(range(1, 15))
    assert "(12 steps)" in QUICKSTART and "(14 steps)" in QUICKSTART
    for number, body in [*jira.items(), *servicenow.items()]:
        first = body.split("\n\n", 1)[0]
        named_screen = first.startswith("**") and " > " in first.split("**")[1]
        command = "```bash" in body or first.startswith("`") or first.startswith("As for Jira")
        assert named_screen or command, f"step {number}: neither a command nor a named screen: {first[:80]}"


def test_every_value_the_quickstart_sets_is_read_by_the_template_or_setup():
    parameters = json.loads((ROOT / "infra" / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    mapped = {match for p in parameters.values() for match in re.findall(r"\$\{([A-Z_]+)", str(p.get("value")))}
    plain = set(re.findall(r"azd env set ([A-Za-z_]+) ", QUICKSTART)) - {"NAME"}  # "azd env set NAME value"
    secret = set(re.findall(r"azd env set-secret ([A-Z_]+)", QUICKSTART))
    assert plain and secret
    assert sorted(plain - SETTING_NAMES - SETUP_VALUES) == []
    assert sorted(secret - mapped) == []
    commands = set(re.findall(r"python -m deskbridge ([a-z-]+)", QUICKSTART))
    assert commands <= set(cli._COMMANDS) and "setup" in commands
    assert "setup --local-settings" in QUICKSTART and "doctor --deployed" in QUICKSTART


def test_the_readme_leads_to_the_quickstart_first():
    top = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    assert "(docs/quickstart.md)" in top.split("```", 1)[0]
