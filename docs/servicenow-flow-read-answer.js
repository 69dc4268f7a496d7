/*
 * Point Desk Bridge: Flow Designer action "Send to Point Desk Bridge", step 3 of 3: Read answer.
 *
 * Where: a Script step after step 2 (the REST step, or servicenow-flow-send-request.js). Server-side ES5.
 * It turns the bridge's answer into a status to branch on and the work note to write.
 *
 * Script step input variables (name: type):
 *   status_code: Integer        <- the REST step's Status Code (or step 2's status_code)
 *   response_body: String       <- the REST step's Response Body (or step 2's response_body)
 *   error_message: String       <- the REST step's Error Message (or step 2's error_message)
 *   check_only: True/False      <- the action input of the same name (step 1's)
 * Script step output variables, also the action's outputs:
 *   status: String   submitted, queued, uncertain, rejected, failed or error; a check: valid, rejected,
 *                    failed or error
 *   note: String     "Point Desk Bridge: ..." for the requested item's work notes (a check's note is written
 *                    for the requester too: the item's comments)
 */
(function execute(inputs, outputs) {
    function text(value) {
        return (value === undefined || value === null) ? '' : String(value);
    }

    function finish(status, message) {
        outputs.status = status;
        outputs.note = 'Point Desk Bridge: ' + message;
    }

    var status = parseInt(text(inputs.status_code), 10) || 0;
    if (text(inputs.error_message) && !status) {
        finish('error', text(inputs.error_message) + ' Run the flow again.');
        return;
    }
    var answer = {};
    try {
        answer = JSON.parse(text(inputs.response_body)) || {};
    } catch (notJson) {
        answer = {};
    }

    var outcome = text(answer.status) || 'error';
    var problems = [];
    var errors = answer.errors || [];
    for (var e = 0; e < errors.length; e++) {
        problems.push(text(errors[e].field) + ': ' + text(errors[e].message));
    }
    var detail = problems.length ? ' ' + problems.join('; ') : '';
    if (text(inputs.check_only) === 'true') {
        var point = answer.point || {};
        var asked = point.body || {};
        if (outcome === 'valid') {
            finish(outcome, 'checked before approval: it can be provisioned as asked ('
                + text(point.path).replace(/^.*\//, '') + ' "' + text(asked.displayName) + '", template '
                + text(asked.templateId) + ').');
        } else if (outcome === 'rejected') {
            finish(outcome, 'checked before approval: this request cannot be provisioned as it is (HTTP ' + status
                + ').' + detail + ' Correct it before it is approved.');
        } else {
            finish(outcome, 'could not check the request (HTTP ' + status + ' ' + outcome + ').' + detail);
        }
        return;
    }
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
})(inputs, outputs);
