"""``python -m deskbridge demo`` as a newcomer runs it: a subprocess, with nothing but the project folder."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deskbridge import cli, demo

ROOT = Path(__file__).resolve().parent.parent


def start_demo(*args):
    # The environment of someone who never configured anything (no stack variables from this session).
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "IDENTITY_", "POINT_", "JIRA_", "SERVICENOW_", "BRIDGE_"))
               and k not in ("REQUESTS_CA_BUNDLE", "AzureWebJobsStorage")}
    return subprocess.Popen([sys.executable, "-m", "deskbridge", "demo", *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs():
    """Both forms at once (they share nothing: each starts its own stand-ins and Azurite)."""
    human, as_json = start_demo(), start_demo("--json")
    return {"human": (*human.communicate(timeout=60), human.returncode),
            "json": (*as_json.communicate(timeout=60), as_json.returncode)}


def test_demo_prints_every_step_a_person_wants_to_see(runs):
    out, err, code = runs["human"]
    assert code == 0, out + err
    steps = [line.split(None, 2)[1:] for line in out.splitlines() if re.match(r"\s+\d+\.\d\ds\s", line)]
    for ticket in ("jira/HR-42", "servicenow/RITM0010452"):
        mine = [rest for who, rest in steps if who == ticket]
        kinds = [re.split(r"\s{2,}", rest)[0] for rest in mine]
        assert kinds[:2] == ["callback accepted", "Syskit Point called"] or kinds[:3] == [
            "callback accepted", "owner e-mail found", "Syskit Point called"], mine
        assert kinds.count("webhook received") == 2 and "ticket updated" in kinds
        assert any("201 submitted" in line for line in mine)
        assert any(re.search(r"request id [0-9a-f-]{36}", line) for line in mine)
        assert any("ProvisioningCompleted, signature checked -> 200 completed" in line for line in mine)
    assert 'Jira internal note: "The Team "Project Apollo" is ready: https://' in out
    assert "Jira issue moved to Done" in out
    assert 'ServiceNow work note (state 3): "The SharePoint site "Sales EMEA Q3" is ready' in out
    assert "GET /api/requests/jira/HR-42 -> 200 completed" in out
    assert "GET /api/requests/servicenow/RITM0010452 -> 200 completed" in out
    assert "Traceback" not in err and "whsec_" not in out + err


def test_demo_json_lists_the_steps(runs):
    out, err, code = runs["json"]
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["seconds"] < 30
    assert [(r["ticket"], r["status"]) for r in report["requests"]] == [
        ("jira/HR-42", "completed"), ("servicenow/RITM0010452", "completed")]
    by_step = {}
    for step in report["steps"]:
        by_step.setdefault((step["ticket"], step["step"]), []).append(step)
    accepted = by_step[("jira/HR-42", "callback accepted")][0]
    assert (accepted["data"]["http_status"], accepted["data"]["status"]) == (201, "submitted")
    assert by_step[("servicenow/RITM0010452", "Syskit Point called")][0]["data"]["path"] == (
        "POST /v1.0/provision/sites")
    events = [s["data"]["event"] for s in report["steps"] if s["step"] == "webhook received"]
    assert sorted(events) == ["ProvisioningCompleted"] * 2 + ["ProvisioningStarted"] * 2
    notes = [s["data"]["work_notes"] for s in by_step[("servicenow/RITM0010452", "ticket updated")]]
    assert notes[-1].startswith('The SharePoint site "Sales EMEA Q3" is ready')
    times = [s["at"] for s in report["steps"]]
    assert times == sorted(times)


def test_missing_azurite_is_said_plainly(tmp_path, monkeypatch, capsys):
    import devtools.azurite

    monkeypatch.setattr(devtools.azurite, "ROOT", tmp_path)  # no node_modules here
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(cli.Failure) as failure, demo.local_stack(tmp_path):
        pytest.fail("the stack must not start without Azurite")
    assert "Azurite" in str(failure.value) and "scripts/bootstrap" in str(failure.value)
