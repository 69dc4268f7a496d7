/*
 * Point Desk Bridge: send an approved catalog request to the bridge.
 *
 * Where: a "Run Script" activity in the catalog item's workflow (table
 * sc_req_item), after the Approval activity. Server-side ES5 (no let/const,
 * no arrow functions, no template strings).
 *
 * What it sends (POST {bridge}/api/servicenow), the body the bridge defines:
 *   { "number": "RITM...", "sys_id": "<32 hex>",
 *     "variables": { "site_name", "site_description", "workspace_type",
 *                    "is_private", "template_id" },
 *     "owners": [e-mails], "members": [e-mails],
 *     "unresolved": [sys_ids of users who have no e-mail address] }
 * signed with Standard Webhooks (webhook-id, webhook-timestamp,
 * webhook-signature) and authorised with the function key.
 *
 * System properties it reads (System Properties > All Properties):
 *   deskbridge.url           https://<app>.azurewebsites.net         (string)
 *   deskbridge.function_key  the function key for /api/servicenow     (password2)
 *   deskbridge.signing_key   whsec_... (the Standard Webhooks secret) (password2)
 * The Syskit Point client secret is NOT here and must never be: only the
 * bridge holds it, in Azure Key Vault.
 *
 * What it leaves behind: a work note on the item saying what the bridge
 * answered, and workflow.scratchpad.deskbridge_status (submitted, queued,
 * uncertain, rejected, failed or error) for an If activity to branch on.
 * Re-running it for the same item is safe: the bridge answers a repeated
 * RITM from its ledger and never provisions twice.
 */
(function sendApprovalToPointDeskBridge() {
    // The catalog variables, by name (match SERVICENOW_VARIABLE_* on the bridge).
    var VARIABLES = ['site_name', 'site_description', 'workspace_type', 'is_private', 'template_id'];
    var OWNERS_VARIABLE = 'owners';    // List Collector on sys_user
    var MEMBERS_VARIABLE = 'members';  // List Collector on sys_user

    function text(value) {
        return (value === undefined || value === null) ? '' : String(value);
    }

    function variable(name) {
        var value = current.variables[name];
        return value ? text(value.toString()) : '';
    }

    // sys_user sys_ids (comma-separated) to e-mail addresses; users without one go to `unresolved`.
    function emailsOf(listValue, emails, unresolved) {
        var ids = text(listValue).split(',');
        for (var i = 0; i < ids.length; i++) {
            var id = ids[i].replace(/^\s+|\s+$/g, '');
            if (!id) {
                continue;
            }
            var user = new GlideRecord('sys_user');
            var email = user.get(id) ? text(user.getValue('email')).replace(/^\s+|\s+$/g, '') : '';
            if (email) {
                emails.push(email);
            } else {
                unresolved.push(id);
            }
        }
    }

    // JSON with every non-ASCII character escaped: the signed bytes are then the sent bytes, whatever the charset.
    function asciiJson(value) {
        return JSON.stringify(value).replace(/[\u007f-\uffff]/g, function (character) {
            return '\\u' + ('0000' + character.charCodeAt(0).toString(16)).slice(-4);
        });
    }

    function note(message) {
        current.work_notes = 'Point Desk Bridge: ' + message;
    }

    function finish(status, message) {
        workflow.scratchpad.deskbridge_status = status;
        note(message);
    }

    var bridgeUrl = text(gs.getProperty('deskbridge.url')).replace(/\/+$/, '');
    var functionKey = text(gs.getProperty('deskbridge.function_key'));
    var signingKey = text(gs.getProperty('deskbridge.signing_key'));
    if (!bridgeUrl || !functionKey) {
        finish('error', 'not sent: set the system properties deskbridge.url and deskbridge.function_key.');
        return;
    }

    var owners = [];
    var members = [];
    var unresolved = [];
    emailsOf(variable(OWNERS_VARIABLE), owners, unresolved);
    emailsOf(variable(MEMBERS_VARIABLE), members, unresolved);

    var variables = {};
    for (var v = 0; v < VARIABLES.length; v++) {
        variables[VARIABLES[v]] = variable(VARIABLES[v]);
    }
    var body = asciiJson({
        number: text(current.getValue('number')),
        sys_id: text(current.getUniqueValue()),
        variables: variables,
        owners: owners,
        members: members,
        unresolved: unresolved
    });

    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(bridgeUrl + '/api/servicenow');
    request.setHttpMethod('post');
    request.setHttpTimeout(30000);
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestHeader('Accept', 'application/json');
    request.setRequestHeader('x-functions-key', functionKey);
    if (signingKey) {
        // Standard Webhooks: HMAC-SHA256 over "id.timestamp.body", keyed with the base64 secret after "whsec_".
        var messageId = 'msg_' + gs.generateGUID();
        var timestamp = String(Math.floor(new Date().getTime() / 1000));
        var mac = new GlideCertificateEncryption().generateMac(
            signingKey.replace(/^whsec_/, ''), 'HmacSHA256', messageId + '.' + timestamp + '.' + body);
        request.setRequestHeader('webhook-id', messageId);
        request.setRequestHeader('webhook-timestamp', timestamp);
        request.setRequestHeader('webhook-signature', 'v1,' + mac);
    }
    request.setRequestBody(body);

    var status = 0;
    var answer = {};
    try {
        var response = request.execute();
        status = response.getStatusCode();
        try {
            answer = JSON.parse(text(response.getBody())) || {};
        } catch (notJson) {
            answer = {};
        }
        if (!status) {
            finish('error', 'not delivered (' + text(response.getErrorMessage()) + '). Run the workflow step again.');
            return;
        }
    } catch (failure) {
        finish('error', 'not delivered (' + text(failure.message || failure) + '). Run the workflow step again.');
        return;
    }

    var outcome = text(answer.status) || 'error';
    var problems = [];
    var errors = answer.errors || [];
    for (var e = 0; e < errors.length; e++) {
        problems.push(text(errors[e].field) + ': ' + text(errors[e].message));
    }
    var detail = problems.length ? ' ' + problems.join('; ') : '';
    if (outcome === 'submitted') {
        finish(outcome, 'sent to Syskit Point (request ' + text(answer.pointRequestId || 'accepted') + ').');
    } else if (outcome === 'queued') {
        finish(outcome, 'Syskit Point is unavailable; the bridge will retry and note the outcome here.' + detail);
    } else if (outcome === 'uncertain') {
        finish(outcome, 'sent, but Syskit Point did not confirm; an operator will check.' + detail);
    } else if (outcome === 'rejected') {
        finish(outcome, 'refused (HTTP ' + status + '). Correct the request and approve it again.' + detail);
    } else {
        finish(outcome, 'answered HTTP ' + status + ' ' + outcome + '.' + detail);
    }
})();
