"""Point Desk Bridge: the table of triggers. The logic lives in the deskbridge package."""

import azure.functions as func

from deskbridge import handlers

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="provision", methods=["POST"])
def provision(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.approval("provision", req)


@app.route(route="jira", methods=["POST"])
def jira(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.approval("jira", req)


@app.route(route="servicenow", methods=["POST"])
def servicenow(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.approval("servicenow", req)


@app.route(route="point/events", methods=["POST"])
def point_events(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.point_event(req)


@app.route(route="requests/{source}/{ticket}", methods=["GET"])
def request_status(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.request_status(req)


# The operator routes: the app's master key only (AuthLevel.ADMIN). Not under admin/: the host keeps that for itself.
@app.route(route="operator/requests", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_list(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.admin("list", req)


@app.route(route="operator/requests/{source}/{ticket}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_show(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.admin("show", req)


@app.route(route="operator/requests/{source}/{ticket}/replay", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def admin_replay(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.admin("replay", req)


@app.route(route="operator/requests/{source}/{ticket}/erase", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def admin_erase(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.admin("erase", req)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.health(req)


@app.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return handlers.openapi(req)


@app.queue_trigger(arg_name="msg", queue_name="%BRIDGE_RETRY_QUEUE%", connection="AzureWebJobsStorage")
def retry(msg: func.QueueMessage) -> None:
    handlers.retry(msg)


@app.queue_trigger(arg_name="msg", queue_name="%BRIDGE_RETRY_POISON_QUEUE%", connection="AzureWebJobsStorage")
def retry_poisoned(msg: func.QueueMessage) -> None:
    handlers.retry_poisoned(msg)


@app.queue_trigger(arg_name="msg", queue_name="%BRIDGE_DESK_QUEUE%", connection="AzureWebJobsStorage")
def desk_update(msg: func.QueueMessage) -> None:
    handlers.desk_update(msg)


@app.queue_trigger(arg_name="msg", queue_name="%BRIDGE_DESK_POISON_QUEUE%", connection="AzureWebJobsStorage")
def desk_update_poisoned(msg: func.QueueMessage) -> None:
    handlers.desk_update_poisoned(msg)


@app.timer_trigger(arg_name="timer", schedule="%BRIDGE_RECONCILE_SCHEDULE%", run_on_startup=False)
def reconcile(timer: func.TimerRequest) -> None:
    handlers.reconcile(timer)


@app.timer_trigger(arg_name="timer", schedule="0 0 6 * * *", run_on_startup=False)
def secret_expiry_check(timer: func.TimerRequest) -> None:
    handlers.secret_expiry_check(timer)
