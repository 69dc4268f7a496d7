"""Every setting the bridge reads is documented, and set in the local example."""

import json
import re
from pathlib import Path

from deskbridge.settings import SETTING_NAMES, SETTINGS, ConfigurationError, Settings, check_all

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in sorted(SETTING_NAMES) if f"`{name}`" not in readme]
    assert missing == []


def test_local_settings_example_has_every_setting():
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert sorted(SETTING_NAMES - set(values)) == []
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_code_reads_no_setting_outside_the_list():
    pattern = re.compile(r"\b((?:POINT|JIRA|SERVICENOW|KEY_VAULT|PROVISION|BRIDGE)_[A-Z0-9_]+)\b")
    read = set()
    for path in list((ROOT / "deskbridge").rglob("*.py")) + [ROOT / "function_app.py"]:
        read |= set(pattern.findall(path.read_text()))
    assert sorted(read - SETTING_NAMES) == []  # constants with these prefixes would read as settings


def test_defaults_are_valid_and_problems_name_the_setting():
    required = {spec.name: "x" for spec in SETTINGS if spec.required}
    good = Settings(required | {"POINT_URL": "https://p.example", "KEY_VAULT_URL": "https://kv.example",
                                "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert check_all(good) == []
    bad = Settings({"POINT_RETRY_SCHEDULE": "x", "BRIDGE_RETRY_SCHEDULE": "soon", "BRIDGE_MAX_OWNERS": "0",
                    "POINT_URL": "ftp://nope"})
    named = {problem.setting for problem in check_all(bad)}
    assert {"BRIDGE_RETRY_SCHEDULE", "BRIDGE_MAX_OWNERS", "POINT_URL", "KEY_VAULT_URL"} <= named
    assert all(isinstance(p, ConfigurationError) and "soon" not in str(p) for p in check_all(bad))
