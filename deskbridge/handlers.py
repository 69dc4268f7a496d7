"""Azure Functions glue: ``func.HttpRequest`` in, plain values to the use cases, ``func.HttpResponse`` out.

The only module of the package that knows Azure Functions types. It imports
nothing heavy at module level, so importing ``function_app`` stays cheap and
can never fail on a setting. Being where the worker starts, it is also where
process-wide logging is set (:func:`deskbridge.telemetry.quiet_sdk_request_logs`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func

from deskbridge import telemetry

if TYPE_CHECKING:
    from deskbridge.runtime import Runtime

log = telemetry.logger("deskbridge")
telemetry.quiet_sdk_request_logs()


def _json(status: int, body: Any) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
    )


def _runtime() -> Runtime:
    from deskbridge import runtime

    return runtime.current()


def _internal_error(where: str) -> func.HttpResponse:
    # Never the exception text: it may carry a URL, a header or a value.
    log.exception("unexpected error in %s", where, extra={"bridge_event": "error"})
    return _json(
        500, {"status": "failed", "errors": [{"field": "bridge", "message": "unexpected error; see the logs"}]}
    )


def _dequeue_count(msg: func.QueueMessage) -> int:
    return int(msg.dequeue_count or 1)


def approval(route: str, req: func.HttpRequest) -> func.HttpResponse:
    from deskbridge import intake

    try:
        validate = req.params.get("validate")  # ?validate=true: a preflight (check only, nothing recorded or sent)
        result = intake.accept(_runtime(), route, req.get_body(), dict(req.headers), validate)
    except Exception:
        return _internal_error(route)
    return _json(result.http_status, result.body)


def request_status(req: func.HttpRequest) -> func.HttpResponse:
    from deskbridge import intake

    try:
        result = intake.status(_runtime(), req.route_params.get("source", ""), req.route_params.get("ticket", ""))
    except Exception:
        return _internal_error("status")
    return _json(result.http_status, result.body)


def point_event(req: func.HttpRequest) -> func.HttpResponse:
    from deskbridge.events import handle_point_event

    try:
        result = handle_point_event(_runtime(), req.get_body(), dict(req.headers))
    except Exception:
        return _internal_error("point/events")
    return _json(result.http_status, result.body)


def admin(action: str, req: func.HttpRequest) -> func.HttpResponse:
    """The operator routes (admin level): list, show, replay, erase; deskbridge.admin answers them."""
    from deskbridge import admin as operator_routes

    try:
        current = _runtime()
        headers = dict(req.headers)
        source, ticket = req.route_params.get("source", ""), req.route_params.get("ticket", "")
        if action == "list":
            result = operator_routes.list_requests(current, dict(req.params), headers)
        elif action == "show":
            result = operator_routes.show(current, source, ticket, headers)
        else:
            result = operator_routes.act(current, action, source, ticket, headers, req.params.get("what", "auto"))
    except Exception:
        return _internal_error(f"operator {action}")
    return _json(result.http_status, result.body)


def health(req: func.HttpRequest) -> func.HttpResponse:
    from deskbridge import __version__

    return _json(200, {"status": "ok", "version": __version__})


OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"


@functools.cache
def _openapi_document() -> bytes:
    """Read once per process, on the first call: the file ships with the app (.funcignore keeps it)."""
    return OPENAPI_FILE.read_bytes()


def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI description, as shipped: the same bytes for every caller, no setting in it."""
    try:
        document = _openapi_document()
    except OSError:
        return _internal_error("openapi.json")
    return func.HttpResponse(document, status_code=200, mimetype="application/json", charset="utf-8")


def retry(msg: func.QueueMessage) -> None:
    """Exceptions propagate on purpose: the host retries, then poisons the message."""
    from deskbridge import worker

    worker.retry(_runtime(), msg.get_body().decode("utf-8"), _dequeue_count(msg))


def retry_poisoned(msg: func.QueueMessage) -> None:
    from deskbridge import worker

    worker.poisoned(_runtime(), msg.get_body().decode("utf-8"))


def desk_update(msg: func.QueueMessage) -> None:
    """Exceptions propagate on purpose: the host redelivers, and the write-back looks before writing again."""
    from deskbridge import writeback

    writeback.desk_update(_runtime(), msg.get_body().decode("utf-8"), _dequeue_count(msg))


def desk_update_poisoned(msg: func.QueueMessage) -> None:
    from deskbridge import writeback

    writeback.poisoned(_runtime(), msg.get_body().decode("utf-8", "replace"))


def reconcile(timer: func.TimerRequest) -> None:
    """Every few minutes: move stranded requests and desk updates forward (deskbridge.reconciler)."""
    from deskbridge import reconciler

    reconciler.sweep(_runtime())


def secret_expiry_check(timer: func.TimerRequest) -> None:
    """Once a day: warn again about cached secrets that expire soon (a long-lived worker reads them once)."""
    current = _runtime()
    if current.built("secrets"):  # nothing read yet: nothing to warn about, and no vault call
        current.secrets.recheck()
