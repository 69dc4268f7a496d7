"""``python -m deskbridge demo`` as a newcomer runs it: a subprocess, with nothing but the project folder."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import functions

from deskbridge import cli
from devtools import demo

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
    # It says what it did with the webhooks: nothing listens on localhost:7071 in the demo.
    assert "straight to the bridge's point_events function in this process" in out
    assert "Registered the bridge's http://localhost:7071" not in out


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


def deployed_copy(tmp_path: Path) -> Path:
    """What a deployment holds of the code: the files .funcignore keeps (deskbridge/ and function_app.py)."""
    import shutil

    ignored = [line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()]
    assert "devtools" in ignored, "the deployment leaves devtools out"
    app = tmp_path / "app"
    shutil.copytree(ROOT / "deskbridge", app / "deskbridge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "function_app.py", app)
    return app


def test_a_deployment_has_no_demo_and_needs_no_devtools(tmp_path):
    app = deployed_copy(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    listed = subprocess.run([sys.executable, "-m", "deskbridge", "--help"], cwd=app, env=environ,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "doctor" in listed.stdout and "demo" not in listed.stdout
    chosen = subprocess.run([sys.executable, "-m", "deskbridge", "demo"], cwd=app, env=environ,
                            capture_output=True, text=True, timeout=60)
    assert chosen.returncode == 2 and "invalid choice: 'demo'" in chosen.stderr, chosen.stderr
    loaded = subprocess.run([sys.executable, "-c", "import sys, function_app; import deskbridge.cli, "
                             "deskbridge.doctor; print(sorted(m for m in sys.modules if m.startswith('devtools')))"],
                            cwd=app, env=environ, capture_output=True, text=True, timeout=60)
    assert (loaded.returncode, loaded.stdout.strip()) == (0, "[]"), loaded.stderr


def test_a_checkout_lists_the_demo_without_importing_devtools():
    listed = subprocess.run([sys.executable, "-c", "import sys\nfrom deskbridge import cli\n"
                             "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
                             "print(sorted(m for m in sys.modules if m.startswith('devtools')))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout and listed.stdout.strip().endswith("[]")
    direct = subprocess.run([sys.executable, "-m", "devtools.demo", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert direct.returncode == 0 and "--timeout" in direct.stdout, direct.stderr


# -- test.http: every sample is answered as its title says ------------------------------

FUNCTION_BY_ROUTE = {"provision": "provision", "jira": "jira", "servicenow": "servicenow",
                     "point/events": "point_events", "health": "health", "openapi.json": "openapi"}


def http_samples():
    """(title, method, route, headers, body) of each request in test.http, as REST Client reads it."""
    text = (ROOT / "test.http").read_text()
    samples = []
    for block in text.split("\n###")[1:]:
        title, *lines = block.splitlines()
        lines = [line for line in lines if not line.startswith("#")] if lines else []
        while lines and not lines[0].strip():
            lines.pop(0)
        method, url = lines[0].split()
        blank = lines.index("") if "" in lines else len(lines)
        headers = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in lines[1:blank])
        headers = {k: v.replace("{{functionKey}}", "").replace("{{masterKey}}", "") for k, v in headers.items()}
        body = "\n".join(lines[blank + 1:]).strip().encode("utf-8")
        samples.append((title.strip(), method, url.replace("{{host}}/api/", ""), headers, body))
    return samples


def send(bridge, method, target, headers, body):
    route, _, query = target.partition("?")
    if route.startswith("operator/requests/"):
        _, _, source, ticket, *action = route.split("/")
        return bridge.http(f"admin_{action[0] if action else 'show'}", method=method, headers=headers,
                           route_params={"source": source, "ticket": ticket})
    if route == "operator/requests":
        params = dict(part.split("=", 1) for part in query.split("&") if part)
        return bridge.http("admin_list", method=method, headers=headers, params=params)
    if route.startswith("requests/"):
        _, source, ticket = route.split("/")
        return bridge.http("request_status", method="GET", route_params={"source": source, "ticket": ticket})
    params = dict(part.split("=", 1) for part in query.split("&") if part)
    return bridge.http(FUNCTION_BY_ROUTE[route], body or None, method=method, headers=headers, params=params)


def test_every_test_http_sample_is_answered_as_described(bridge):
    samples = http_samples()
    operator_routes = {"operator/requests/{source}/{ticket}" + (f"/{r.rsplit('/', 1)[1]}" if r.count("/") == 4 else "")
                       for _, _, r, _, _ in samples if r.startswith("operator/requests/")}
    routes = {"requests/{source}/{ticket}" if route.startswith("requests/") else route.partition("?")[0]
              for _, _, route, _, _ in samples if not route.startswith("operator/requests/")} | operator_routes
    registered = [json.loads(f.get_function_json())["bindings"][0] for f in functions().values()]
    assert routes == {"provision", "jira", "servicenow", "point/events", "requests/{source}/{ticket}", "health",
                      "openapi.json", "operator/requests", "operator/requests/{source}/{ticket}",
                      "operator/requests/{source}/{ticket}/replay", "operator/requests/{source}/{ticket}/erase"}
    assert routes == {b["route"] for b in registered if b["type"] == "httpTrigger"}  # a sample for every route
    expected = [200, 200, 201, 201, 201, 200, 400, 201, 200, 201, 201, 201, 422, 200, 400, 200, 200, 200, 200, 200]
    answers = [send(bridge, *sample[1:]) for sample in samples[: len(expected)]]
    assert [status for status, _ in answers] == expected, list(zip([s[0] for s in samples], answers, strict=False))
    assert answers[1][1]["openapi"].startswith("3.1.")
    assert answers[5][1]["duplicate"] is True and answers[8][1]["status"] == "ignored"
    checks = answers[13:17]  # ?validate=true: answered, never recorded
    assert [b["status"] for _, b in checks] == ["valid", "rejected", "valid", "valid"]
    assert [e["field"] for e in checks[1][1]["errors"]] == ["workspaceType", "displayName", "owners[0]", "isPrivate",
                                                            "templateId"]
    assert [b["point"]["path"] for _, b in (checks[0], checks[2], checks[3])] == [
        "/v1.0/provision/sites", "/v1.0/provision/teams", "/v1.0/provision/sites"]
    assert [bridge.record(b["ticket"]["source"], b["ticket"]["id"]) for _, b in (checks[0], checks[2], checks[3])] == [
        None, None, None]
    assert [b["ticket"] for _, b in answers[2:5]] == [
        {"source": "provision-jira", "id": "MKT-7"}, {"source": "provision-servicenow", "id": "RITM0010460"},
        {"source": "portal", "id": "FAC-1001"}]
    events = samples[len(expected):len(expected) + 3]
    assert [title.split(": ")[1].split()[0] for title, *_ in events] == [
        "ProvisioningStarted", "ProvisioningCompleted", "ProvisioningFailed"]
    # Sent by hand, unsigned, an event is refused...
    assert send(bridge, *events[0][1:])[0] == 401
    # ...signed as Syskit Point signs, it settles the ServiceNow sample's request.
    from deskbridge.auth import sign_point_event

    signed = [(method, route, headers | {"Signature": sign_point_event(body, bridge.stack.point.signature_key)}, body)
              for _, method, route, headers, body in events]
    answers = [send(bridge, *sample) for sample in signed]
    assert [(status, body["status"]) for status, body in answers] == [
        (200, "provisioning"), (200, "completed"), (202, "unmatched")]
    assert bridge.record("servicenow", "RITM0010452").status == "completed"
    # The operator samples, last: list, show, a replay refused (completed), the erase.
    operator = [send(bridge, *sample[1:]) for sample in samples[len(expected) + 3:]]
    assert [status for status, _ in operator] == [200, 200, 409, 200], operator
    assert operator[1][1]["history"][-1] == "event_completed>completed" and operator[3][1]["erased"][:1] == ["owners"]
