"""Every operator command reports its errors in one form: every problem named, as text or as one JSON object."""

from __future__ import annotations

import json

import pytest

from deskbridge import cli
from deskbridge import runtime as runtimes
from deskbridge.settings import SETTINGS, SETTINGS_HINT, STORAGE_NOT_SET

REQUIRED = sorted(spec.name for spec in SETTINGS if spec.required)  # POINT_*, KEY_VAULT_URL
COMMANDS = {  # each command as a person types it, and the settings it cannot run without
    "doctor": REQUIRED + ["AzureWebJobsStorage"],
    "templates": REQUIRED,
    "webhooks list": REQUIRED,
    "webhooks register https://bridge.example/api/point/events?code=k": REQUIRED,
    "webhooks delete https://bridge.example/api/point/events?code=k": REQUIRED,
    "list": ["AzureWebJobsStorage"],
    "replay jira HR-42 --yes": ["AzureWebJobsStorage"],
}


@pytest.fixture
def unconfigured(tmp_path, monkeypatch, capsys):
    """Nothing set: no local.settings.json, an empty environment for the bridge."""
    monkeypatch.chdir(tmp_path)
    runtimes.reset({})

    def run(*argv):
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    runtimes.reset({})


@pytest.mark.parametrize("typed", COMMANDS)
def test_missing_settings_are_all_named_as_text(unconfigured, typed):
    code, out, err = unconfigured(*typed.split())
    assert code != 0
    shown = out + err
    missing = [name for name in COMMANDS[typed] if name not in shown]
    assert missing == [], shown
    if not typed.startswith("doctor"):
        assert out == ""
        lines = err.splitlines()
        assert sorted(line for line in lines if line.startswith("error:")) == sorted(
            f"error: setting {name} {STORAGE_NOT_SET if name == 'AzureWebJobsStorage' else 'is not set'}"
            for name in COMMANDS[typed])
        assert lines[-1] == f"  -> {SETTINGS_HINT}" and err.count(SETTINGS_HINT) == 1  # said once, after them


@pytest.mark.parametrize("typed", COMMANDS)
def test_missing_settings_with_json_are_one_json_object(unconfigured, typed):
    code, out, err = unconfigured(*typed.split(), "--json")
    assert code != 0 and err == ""
    report = json.loads(out)  # exactly one JSON document on stdout (two would not parse)
    assert isinstance(report, dict) and report["ok"] is False
    if typed == "doctor":
        [settings] = [c for c in report["checks"] if c["check"] == "settings"]
        assert all(name in settings["message"] for name in COMMANDS[typed])
    else:
        assert sorted(p["setting"] for p in report["problems"]) == sorted(COMMANDS[typed])
        assert all(p["hint"] == SETTINGS_HINT for p in report["problems"])
        assert report["error"] == "; ".join(p["message"] for p in report["problems"])


def test_a_malformed_setting_is_named_with_the_missing_ones(unconfigured, monkeypatch):
    runtimes.reset({"POINT_URL": "ftp://point.example", "POINT_TENANT_ID": "t", "POINT_CLIENT_ID": "c"})
    code, out, err = unconfigured("templates", "--json")
    named = {p["setting"]: p["message"] for p in json.loads(out)["problems"]}
    assert named == {"POINT_URL": "setting POINT_URL must be an https:// URL",
                     "POINT_API_APP_ID": "setting POINT_API_APP_ID is not set",
                     "KEY_VAULT_URL": "setting KEY_VAULT_URL is not set"}


def test_an_unreadable_local_settings_file_is_one_problem_in_either_form(unconfigured, tmp_path):
    (tmp_path / "local.settings.json").write_text('{"Values": {"POINT_URL": ')
    code, out, err = unconfigured("list")
    assert code == 2 and err.startswith("error: local.settings.json is not valid JSON") and "->" in err
    code, out, err = unconfigured("list", "--json")
    assert code == 2 and err == "" and json.loads(out)["problems"][0]["message"].startswith("local.settings.json")


def test_an_unknown_command_or_option_is_a_usage_error_in_either_form(unconfigured):
    code, out, err = unconfigured("lsit")
    assert code == 2 and "invalid choice: 'lsit'" in err and err.startswith("usage: python -m deskbridge")
    code, out, err = unconfigured("list", "--status", "done", "--json")
    assert code == 2 and err == ""
    report = json.loads(out)
    assert "invalid choice: 'done'" in report["error"]
    assert report["usage"].startswith("usage: python -m deskbridge list")


def test_replay_with_json_does_not_prompt(unconfigured):
    runtimes.reset({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    code, out, err = unconfigured("replay", "jira", "HR-42", "--json")
    assert code == 1 and err == ""
    assert json.loads(out)["problems"] == [{"message": "replay --json does not ask for confirmation",
                                            "hint": "add --yes"}]
