/*
 * Point Desk Bridge: Flow Designer action "Send to Point Desk Bridge", step 2 of 3: Send request.
 *
 * Where: a Script step, for instances without Integration Hub (with it, use a REST step instead:
 * docs/servicenow.md). Server-side ES5. It posts what step 1 (servicenow-flow-build-request.js) built.
 *
 * Script step input variables (name: type), each mapped to step 1's output of the same name:
 *   body, endpoint, webhook_id, webhook_timestamp, webhook_signature, error: String
 *   function_key: Password (2 Way Encrypted)
 * Script step output variables:
 *   status_code: Integer (0 when nothing was delivered), response_body: String, error_message: String
 */
(function execute(inputs, outputs) {
    function text(value) {
        return (value === undefined || value === null) ? '' : String(value);
    }

    outputs.status_code = 0;
    outputs.response_body = '';
    outputs.error_message = text(inputs.error);
    if (outputs.error_message) {
        return;
    }

    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(text(inputs.endpoint));
    request.setHttpMethod('post');
    request.setHttpTimeout(30000);
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestHeader('Accept', 'application/json');
    request.setRequestHeader('x-functions-key', text(inputs.function_key));
    if (text(inputs.webhook_signature)) {
        request.setRequestHeader('webhook-id', text(inputs.webhook_id));
        request.setRequestHeader('webhook-timestamp', text(inputs.webhook_timestamp));
        request.setRequestHeader('webhook-signature', text(inputs.webhook_signature));
    }
    request.setRequestBody(text(inputs.body));
    try {
        var response = request.execute();
        outputs.status_code = response.getStatusCode() || 0;
        outputs.response_body = text(response.getBody());
        if (!outputs.status_code) {
            outputs.error_message = 'not delivered (' + text(response.getErrorMessage()) + ').';
        }
    } catch (failure) {
        outputs.error_message = 'not delivered (' + text(failure.message || failure) + ').';
    }
})(inputs, outputs);
