"""The desk recipes in docs/ work: the ServiceNow Run Script builds, signs and sends what the bridge accepts.

The script runs under Node with small stand-ins for the ServiceNow globals it
uses (current, gs, GlideRecord, GlideCertificateEncryption, sn_ws.RESTMessageV2,
workflow); the request it would send goes through the bridge's registered
function, so the body and the Standard Webhooks signature are checked by the
bridge's own code.
"""

import base64
import json
import secrets
import shutil
import subprocess

import pytest
from conftest import ROOT

SCRIPT = ROOT / "docs" / "servicenow-run-script.js"
NODE = shutil.which("node")

HARNESS = r"""
const crypto = require('crypto');
const fs = require('fs');
const setup = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const sent = {headers: {}};
global.current = {
  variables: setup.variables, work_notes: '',
  getValue: (name) => setup.item[name], getUniqueValue: () => setup.item.sys_id,
};
global.gs = {
  getProperty: (name) => setup.properties[name],
  generateGUID: () => crypto.randomBytes(16).toString('hex'),
};
global.GlideRecord = function (table) {
  if (table !== 'sys_user') throw new Error('unexpected table ' + table);
  let found = null;
  this.get = (id) => { found = setup.users[id] || null; return found !== null; };
  this.getValue = (field) => (found ? found[field] : null);
};
global.GlideCertificateEncryption = function () {
  this.generateMac = (key, algorithm, data) => {
    if (algorithm !== 'HmacSHA256') throw new Error('unexpected algorithm ' + algorithm);
    return crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(data, 'utf8').digest('base64');
  };
};
global.sn_ws = {RESTMessageV2: function () {
  this.setEndpoint = (url) => { sent.url = url; };
  this.setHttpMethod = (method) => { sent.method = method; };
  this.setHttpTimeout = () => {};
  this.setRequestHeader = (name, value) => { sent.headers[name] = value; };
  this.setRequestBody = (body) => { sent.body = body; };
  this.execute = () => ({
    getStatusCode: () => setup.response.status,
    getBody: () => JSON.stringify(setup.response.body),
    getErrorMessage: () => '',
  });
}};
global.workflow = {scratchpad: {}};
eval(fs.readFileSync(process.argv[3], 'utf8'));
process.stdout.write(JSON.stringify({sent, note: current.work_notes, status: workflow.scratchpad.deskbridge_status}));
"""

OWNER = "6816f79cc0a8016401c5a33be04be441"
MEMBER = "5137153cc611227c000bbd1bd8cd2005"
NO_EMAIL = "0a826bf03710200044e0bfc8bcbe5d7a"


def run_script(tmp_path, *, signing_key, owners, response=None):
    setup = {
        "item": {"number": "RITM0010477", "sys_id": "aa1c2b7e4f3a1210a1b2c3d4e5f60718"},
        "variables": {"site_name": "Zürich Office – Planning", "site_description": "Floor plans",
                      "workspace_type": "teams", "is_private": "true", "template_id": "7",
                      "owners": owners, "members": MEMBER},
        "users": {OWNER: {"email": "olga.owner@contoso.com"}, MEMBER: {"email": "mark.member@contoso.com"},
                  NO_EMAIL: {"email": ""}},
        "properties": {"deskbridge.url": "https://bridge.example/", "deskbridge.function_key": "fk-local",
                       "deskbridge.signing_key": signing_key},
        "response": response or {"status": 201, "body": {"status": "submitted", "pointRequestId": "r-1"}},
    }
    (tmp_path / "setup.json").write_text(json.dumps(setup))
    (tmp_path / "harness.js").write_text(HARNESS)
    done = subprocess.run([NODE, str(tmp_path / "harness.js"), str(tmp_path / "setup.json"), str(SCRIPT)],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_run_script_is_es5():
    acorn = ROOT / "node_modules" / ".bin" / "acorn"
    if not acorn.exists():
        pytest.skip("acorn comes with node_modules (scripts/bootstrap)")
    done = subprocess.run([str(acorn), "--ecma5", "--silent", str(SCRIPT)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_run_script_request_is_accepted_by_the_bridge(bridge, tmp_path):
    signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    bridge.stack.vault.set_secret("servicenow-signing", signing_secret)
    bridge.configure(SERVICENOW_SIGNING_SECRET_NAME="servicenow-signing")
    ran = run_script(tmp_path, signing_key=signing_secret, owners=OWNER)
    sent = ran["sent"]
    assert (sent["url"], sent["method"]) == ("https://bridge.example/api/servicenow", "post")
    assert sent["headers"]["x-functions-key"] == "fk-local"
    assert sent["headers"]["webhook-signature"].startswith("v1,")
    assert sent["body"].isascii()  # non-ASCII escaped: the signed bytes are the sent bytes
    assert json.loads(sent["body"]) == {
        "number": "RITM0010477", "sys_id": "aa1c2b7e4f3a1210a1b2c3d4e5f60718",
        "variables": {"site_name": "Zürich Office – Planning", "site_description": "Floor plans",
                      "workspace_type": "teams", "is_private": "true", "template_id": "7"},
        "owners": ["olga.owner@contoso.com"], "members": ["mark.member@contoso.com"], "unresolved": [],
    }
    status, answer = bridge.http("servicenow", sent["body"].encode(), headers=sent["headers"])
    assert (status, answer["status"]) == (201, "submitted"), answer
    [call] = bridge.stack.point.provision_calls()
    assert call.json()["displayName"] == "Zürich Office – Planning" and call.json()["isPrivate"] is True
    # What the script leaves on the item for that answer.
    ran = run_script(tmp_path, signing_key=signing_secret, owners=OWNER, response={"status": status, "body": answer})
    assert ran["status"] == "submitted"
    assert ran["note"] == f"Point Desk Bridge: sent to Syskit Point (request {answer['pointRequestId']})."
    # The same key with a tampered body is refused.
    tampered = sent["body"].replace("Floor plans", "Floor plans!")
    assert bridge.http("servicenow", tampered.encode(), headers=sent["headers"])[0] == 401


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_users_without_email_are_unresolved_and_the_refusal_is_noted(bridge, tmp_path):
    ran = run_script(tmp_path, signing_key="", owners=NO_EMAIL)
    body = json.loads(ran["sent"]["body"])
    assert body["owners"] == [] and body["unresolved"] == [NO_EMAIL]
    assert "webhook-signature" not in ran["sent"]["headers"]
    status, answer = bridge.http("servicenow", ran["sent"]["body"].encode(), headers=ran["sent"]["headers"])
    assert status == 422 and NO_EMAIL in answer["errors"][0]["message"]
    ran = run_script(tmp_path, signing_key="", owners=NO_EMAIL, response={"status": status, "body": answer})
    assert ran["status"] == "rejected"
    assert ran["note"].startswith("Point Desk Bridge: refused (HTTP 422). Correct the request and approve it again.")
    assert NO_EMAIL in ran["note"]


# == the Flow Designer action (docs/servicenow-flow-*.js) ===============================

FLOW_SCRIPTS = {step: ROOT / "docs" / f"servicenow-flow-{step}.js" for step in ("build-request", "send-request",
                                                                                 "read-answer")}

# The same stand-ins, plus Flow Designer's inputs and outputs; the requested item arrives as a record input.
FLOW_HARNESS = HARNESS.replace(
    "global.workflow = {scratchpad: {}};",
    "global.inputs = setup.inputs || {};\n"
    "if (setup.item) { global.inputs.requested_item = global.current; }\n"
    "global.outputs = {};",
).replace(
    "process.stdout.write(JSON.stringify({sent, note: current.work_notes, "
    "status: workflow.scratchpad.deskbridge_status}));",
    "process.stdout.write(JSON.stringify({sent, outputs}));",
)


def run_flow_step(tmp_path, step, **setup):
    (tmp_path / "setup.json").write_text(json.dumps(setup))
    (tmp_path / "flow-harness.js").write_text(FLOW_HARNESS)
    done = subprocess.run([NODE, str(tmp_path / "flow-harness.js"), str(tmp_path / "setup.json"),
                           str(FLOW_SCRIPTS[step])], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def flow_item(owners=OWNER):
    return {
        "item": {"number": "RITM0010481", "sys_id": "bb1c2b7e4f3a1210a1b2c3d4e5f60718"},
        "variables": {"site_name": "Finance – Q4 close", "site_description": "Line one\nLine two",
                      "workspace_type": "sites", "is_private": "false", "template_id": "8",
                      "owners": owners, "members": MEMBER},
        "users": {OWNER: {"email": "olga.owner@contoso.com"}, MEMBER: {"email": "mark.member@contoso.com"},
                  NO_EMAIL: {"email": ""}},
    }


def test_flow_scripts_are_es5():
    acorn = ROOT / "node_modules" / ".bin" / "acorn"
    if not acorn.exists():
        pytest.skip("acorn comes with node_modules (scripts/bootstrap)")
    for script in FLOW_SCRIPTS.values():
        done = subprocess.run([str(acorn), "--ecma5", "--silent", str(script)], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0, (script.name, done.stderr)


def signed_flow_properties(bridge) -> dict[str, str]:
    """The system properties the Flow action reads, with a signing secret the bridge's ServiceNow route checks."""
    signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    bridge.stack.vault.set_secret("servicenow-signing", signing_secret)
    bridge.configure(SERVICENOW_SIGNING_SECRET_NAME="servicenow-signing")
    return {"deskbridge.url": "https://bridge.example", "deskbridge.function_key": "fk-flow",
            "deskbridge.signing_key": signing_secret}


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_flow_action_builds_sends_and_notes_what_the_bridge_accepts(bridge, tmp_path):
    properties = signed_flow_properties(bridge)
    built = run_flow_step(tmp_path, "build-request", properties=properties, **flow_item())["outputs"]
    assert built["error"] == "" and built["endpoint"] == "https://bridge.example/api/servicenow"
    assert built["body"].isascii() and built["webhook_signature"].startswith("v1,")
    assert json.loads(built["body"]) == {
        "number": "RITM0010481", "sys_id": "bb1c2b7e4f3a1210a1b2c3d4e5f60718",
        "variables": {"site_name": "Finance – Q4 close", "site_description": "Line one\nLine two",
                      "workspace_type": "sites", "is_private": "false", "template_id": "8"},
        "owners": ["olga.owner@contoso.com"], "members": ["mark.member@contoso.com"], "unresolved": [],
    }
    # Step 2 without Integration Hub: the script step posts exactly what step 1 built.
    headers = {"Content-Type": "application/json", "x-functions-key": built["function_key"],
               "webhook-id": built["webhook_id"], "webhook-timestamp": built["webhook_timestamp"],
               "webhook-signature": built["webhook_signature"]}
    status, answer = bridge.http("servicenow", built["body"].encode(), headers=headers)
    assert (status, answer["status"]) == (201, "submitted"), answer
    [call] = bridge.stack.point.provision_calls()
    assert call.path == "/v1.0/provision/sites"
    assert call.json() == {
        "templateId": 8, "displayName": "Finance – Q4 close", "desiredUrl": "finance-q4-close",
        "owners": ["olga.owner@contoso.com"], "members": ["mark.member@contoso.com"],
        "description": "Line one\nLine two", "comment": "Auto-generated by ServiceNow RITM0010481",
        "metadata": {}, "isPrivate": False,
    }
    sent = run_flow_step(tmp_path, "send-request", properties={}, inputs=built,
                         response={"status": status, "body": answer})
    assert sent["sent"]["url"] == built["endpoint"] and sent["sent"]["method"] == "post"
    assert sent["sent"]["body"] == built["body"]
    assert {k: sent["sent"]["headers"][k] for k in headers} == headers
    assert sent["outputs"]["status_code"] == 201 and sent["outputs"]["error_message"] == ""
    read = run_flow_step(tmp_path, "read-answer", properties={}, inputs=sent["outputs"])["outputs"]
    assert read == {"status": "submitted",
                    "note": f"Point Desk Bridge: sent to Syskit Point (request {answer['pointRequestId']})."}
    # The REST step (Integration Hub) sends the same pills: the same delivery again is refused as a replay.
    assert bridge.http("servicenow", built["body"].encode(), headers=headers)[0] == 409
    assert len(bridge.stack.point.provision_calls()) == 1


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_flow_action_refusals_and_missing_properties_are_noted(bridge, tmp_path):
    built = run_flow_step(tmp_path, "build-request", properties={"deskbridge.url": "https://bridge.example",
                                                                 "deskbridge.function_key": "fk-flow"},
                          **flow_item(owners=NO_EMAIL))["outputs"]
    assert built["webhook_signature"] == "" and json.loads(built["body"])["unresolved"] == [NO_EMAIL]
    status, answer = bridge.http("servicenow", built["body"].encode(), headers={"x-functions-key": "fk-flow"})
    assert status == 422
    read = run_flow_step(tmp_path, "read-answer", properties={},
                         inputs={"status_code": status, "response_body": json.dumps(answer), "error_message": ""})
    assert read["outputs"]["status"] == "rejected" and NO_EMAIL in read["outputs"]["note"]
    assert read["outputs"]["note"].startswith("Point Desk Bridge: refused (HTTP 422).")
    missing = run_flow_step(tmp_path, "build-request", properties={}, **flow_item())["outputs"]
    assert missing["body"] == "" and "deskbridge.url" in missing["error"]
    sent = run_flow_step(tmp_path, "send-request", properties={}, inputs=missing)
    assert "url" not in sent["sent"] and sent["outputs"]["status_code"] == 0
    read = run_flow_step(tmp_path, "read-answer", properties={}, inputs=sent["outputs"])["outputs"]
    assert read["status"] == "error" and "deskbridge.function_key" in read["note"]
    assert bridge.stack.point.provision_calls() == []


# == the check on catalog submission (the same action, Check only = true) ====================


def sent_as_the_flow_sends(bridge, built):
    """The request step 2 posts, through the bridge's function: the endpoint's query included."""
    from urllib.parse import parse_qsl, urlsplit

    headers = {"Content-Type": "application/json", "x-functions-key": built["function_key"]}
    if built["webhook_signature"]:
        headers |= {"webhook-id": built["webhook_id"], "webhook-timestamp": built["webhook_timestamp"],
                    "webhook-signature": built["webhook_signature"]}
    params = dict(parse_qsl(urlsplit(built["endpoint"]).query))
    return bridge.http("servicenow", built["body"].encode(), headers=headers, params=params)


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_flow_action_checks_a_request_on_catalog_submission(bridge, tmp_path):
    properties = signed_flow_properties(bridge)
    built = run_flow_step(tmp_path, "build-request", properties=properties, inputs={"check_only": True},
                          **flow_item())["outputs"]
    assert built["endpoint"] == "https://bridge.example/api/servicenow?validate=true"
    status, answer = sent_as_the_flow_sends(bridge, built)
    assert (status, answer["status"], answer["point"]["path"]) == (200, "valid", "/v1.0/provision/sites"), answer
    sent = run_flow_step(tmp_path, "send-request", properties={}, inputs=built,
                         response={"status": status, "body": answer})
    assert sent["sent"]["url"] == built["endpoint"] and sent["sent"]["body"] == built["body"]
    read = run_flow_step(tmp_path, "read-answer", properties={},
                         inputs=sent["outputs"] | {"check_only": True})["outputs"]
    assert read == {"status": "valid", "note": 'Point Desk Bridge: checked before approval: it can be provisioned '
                                               'as asked (sites "Finance – Q4 close", template 8).'}
    assert bridge.stack.point.calls == [] and bridge.record("servicenow", "RITM0010481") is None
    # Approved later, the same action without Check only sends what the check showed.
    built = run_flow_step(tmp_path, "build-request", properties=properties, **flow_item())["outputs"]
    assert built["endpoint"] == "https://bridge.example/api/servicenow"
    assert sent_as_the_flow_sends(bridge, built)[0] == 201
    [call] = bridge.stack.point.provision_calls()
    assert (call.path, call.json()) == (answer["point"]["path"], answer["point"]["body"])


@pytest.mark.skipif(NODE is None, reason="needs Node.js")
def test_flow_action_check_notes_every_error_for_the_requester(bridge, tmp_path):
    item = flow_item(owners=NO_EMAIL)
    item["variables"] |= {"workspace_type": "wiki", "template_id": "99"}
    properties = {"deskbridge.url": "https://bridge.example", "deskbridge.function_key": "fk-flow"}
    built = run_flow_step(tmp_path, "build-request", properties=properties, inputs={"check_only": "true"},
                          **item)["outputs"]
    status, answer = sent_as_the_flow_sends(bridge, built)
    assert status == 400 and [e["field"] for e in answer["errors"]] == ["owners", "workspaceType", "templateId"]
    read = run_flow_step(tmp_path, "read-answer", properties={}, inputs={
        "status_code": status, "response_body": json.dumps(answer), "error_message": "", "check_only": "true"})
    note = read["outputs"]["note"]
    assert read["outputs"]["status"] == "rejected"
    assert note.startswith("Point Desk Bridge: checked before approval: this request cannot be provisioned as it "
                           "is (HTTP 400). owners: these users have no e-mail address in ServiceNow: " + NO_EMAIL)
    assert "workspaceType: must be one of" in note and "templateId: template 99 is not allowed" in note
    assert note.endswith("Correct it before it is approved.")
    assert bridge.stack.point.calls == []
