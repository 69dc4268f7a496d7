/*
 * Point Desk Bridge: Flow Designer action "Send to Point Desk Bridge", step 1 of 3: Build request.
 *
 * Where: a Script step in a custom action (Flow Designer / Workflow Studio > Action). Server-side ES5.
 * It builds the same body as servicenow-run-script.js and signs it (Standard Webhooks); step 2 sends it
 * (a REST step with Integration Hub, or servicenow-flow-send-request.js without), step 3 reads the answer
 * (servicenow-flow-read-answer.js). docs/servicenow.md says how to wire them.
 *
 * Script step input variables (name: type):
 *   requested_item: Record (Table: sc_req_item)   <- action input, from the flow's trigger record
 *   check_only: True/False                        <- action input; true: only check the request (a preflight,
 *                                                    on catalog submission): the bridge answers what an approval
 *                                                    would send, or every error, and records nothing
 * Script step output variables (name: type):
 *   body: String                  the JSON to POST (every non-ASCII character escaped)
 *   endpoint: String              {deskbridge.url}/api/servicenow, with ?validate=true when check_only
 *   function_key: Password (2 Way Encrypted)
 *   webhook_id, webhook_timestamp, webhook_signature: String   (empty when no signing key is set)
 *   error: String                 why nothing can be sent (missing properties); empty otherwise
 *
 * System properties it reads: deskbridge.url, deskbridge.function_key, deskbridge.signing_key (as for the
 * Run Script). The Syskit Point client secret is NOT here and must never be.
 */
(function execute(inputs, outputs) {
    // The catalog variables, by name (match SERVICENOW_VARIABLE_* on the bridge).
    var VARIABLES = ['site_name', 'site_description', 'workspace_type', 'is_private', 'template_id'];
    var OWNERS_VARIABLE = 'owners';    // List Collector on sys_user
    var MEMBERS_VARIABLE = 'members';  // List Collector on sys_user

    var item = inputs.requested_item;

    function text(value) {
        return (value === undefined || value === null) ? '' : String(value);
    }

    function variable(name) {
        var value = item.variables[name];
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

    outputs.body = '';
    outputs.endpoint = '';
    outputs.function_key = '';
    outputs.webhook_id = '';
    outputs.webhook_timestamp = '';
    outputs.webhook_signature = '';
    outputs.error = '';

    var bridgeUrl = text(gs.getProperty('deskbridge.url')).replace(/\/+$/, '');
    var functionKey = text(gs.getProperty('deskbridge.function_key'));
    var signingKey = text(gs.getProperty('deskbridge.signing_key'));
    if (!bridgeUrl || !functionKey) {
        outputs.error = 'not sent: set the system properties deskbridge.url and deskbridge.function_key.';
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
        number: text(item.getValue('number')),
        sys_id: text(item.getUniqueValue()),
        variables: variables,
        owners: owners,
        members: members,
        unresolved: unresolved
    });

    outputs.body = body;
    outputs.endpoint = bridgeUrl + '/api/servicenow' + (text(inputs.check_only) === 'true' ? '?validate=true' : '');
    outputs.function_key = functionKey;
    if (signingKey) {
        // Standard Webhooks: HMAC-SHA256 over "id.timestamp.body", keyed with the base64 secret after "whsec_".
        var messageId = 'msg_' + gs.generateGUID();
        var timestamp = String(Math.floor(new Date().getTime() / 1000));
        var mac = new GlideCertificateEncryption().generateMac(
            signingKey.replace(/^whsec_/, ''), 'HmacSHA256', messageId + '.' + timestamp + '.' + body);
        outputs.webhook_id = messageId;
        outputs.webhook_timestamp = timestamp;
        outputs.webhook_signature = 'v1,' + mac;
    }
})(inputs, outputs);
