"""The documents change settings and secrets one way: `azd env set` (or `set-secret`) and `azd provision`.

Each `azd provision` writes the function app's whole settings block from the
azd environment (infra/app/function.bicep), so a setting changed on the app
itself (the CLI's appsettings commands, the portal's Configuration or
Environment variables pages) is silently dropped by the next provision; and
a secret written to the vault by hand skips its expiry and the
write-once rule of the template. This test fails on any document step that
does either, naming the file and line.
"""

import re
from pathlib import Path

from deskbridge.settings import SETTING_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMES = "|".join(sorted(SETTING_NAMES, key=len, reverse=True))
EDITS_THE_APP = {
    "an appsettings command": re.compile(r"\baz\s+(?:functionapp|webapp)\s+config\s+appsettings\s+(?:set|delete)\b"),
    "a portal settings page": re.compile(
        r"(?i)(?:\b(?:environment variables|application settings|app settings|configuration)\*?\s*>)"
        r"|(?:>\s*\*?(?:environment variables|application settings|configuration)\b)"
    ),
    "a direct Key Vault write": re.compile(r"\baz\s+keyvault\s+secret\s+(?:set|set-attributes)\b"),
    "a setting set outside azd": re.compile(
        rf"(?i)(?<!azd env )\b(?:set|app setting:?|setting:)\s+(?:the\s+)?`(?:{NAMES})="
    ),
    "a setting changed in place": re.compile(r"(?i)\bset the (?:app )?setting to\b"),
}


def _steps_that_edit_the_app(text: str) -> list[tuple[int, str, str]]:
    """(line, what, the line) of each step; a step may run over a line break, as prose wraps."""
    lines = text.splitlines()
    found = []
    for what, pattern in EDITS_THE_APP.items():
        for match in pattern.finditer(text):
            number = text.count("\n", 0, match.start()) + 1
            found.append((number, what, lines[number - 1].strip()))
    return sorted(found)


def test_no_document_changes_a_setting_or_secret_outside_azd():
    problems = [
        f"{path.relative_to(ROOT)}:{number}: {what}: {line}"
        for path in DOCUMENTS
        for number, what, line in _steps_that_edit_the_app(path.read_text(encoding="utf-8"))
    ]
    assert problems == [], (
        "use `azd env set NAME value` (a secret: `azd env set-secret NAME`) and `azd provision`:\n"
        + "\n".join(problems)
    )


def test_the_check_catches_each_way_of_editing_the_app():
    caught = [
        "az functionapp config appsettings set -g rg -n app --settings JIRA_URL=https://x",
        "az webapp config appsettings delete --setting-names JIRA_URL",
        "In the portal: the function app > *Settings > Environment variables* > add JIRA_URL",
        "open *Configuration* > *Application settings* and add it",
        "az keyvault secret set --vault-name kv --name jira-webhook-secret --value x",
        "az keyvault secret set-attributes --vault-name kv --name x --expires 2027-01-01",
        "2. Tell the bridge its name: app setting `JIRA_WEBHOOK_SECRET_NAME=jira-webhook-secret`.",
        "App setting: `SERVICENOW_SIGNING_SECRET_NAME=servicenow-signing-secret`.",
        "set `JIRA_REQUIRE_SIGNATURE=false`: signed deliveries are still verified",
        "leave `PROVISION_SIGNING_SECRET_NAME` unset, or set\n  `PROVISION_REQUIRE_SIGNATURE=false`.",
        "2. Set the setting to `point-webhook-key-2,point-webhook-key` (this restarts the app).",
    ]
    for line in caught:
        assert _steps_that_edit_the_app(line), line
    allowed = [
        "azd env set JIRA_REQUIRE_SIGNATURE false",
        "`azd env set\nJIRA_WEBHOOK_SECRET_NAME jira-webhook-secret-2` and `azd provision`",
        "azd env set-secret JIRA_WEBHOOK_SECRET",
        "(`JIRA_INTERNAL_NOTE=true`, the default; `false` writes a plain comment)",
        "changed on the function app itself (`az functionapp config appsettings`, the portal's",
        "az role assignment delete --assignee <id>",
    ]
    for line in allowed:
        assert not _steps_that_edit_the_app(line), line
