"""Structured log lines that reach Application Insights from the Python worker.

The Functions host forwards a Python log record's message, not its ``extra``
fields, so a line that carries ``bridge_event`` gets its dimensions appended
to the message as one JSON object: ``approval provision HR-42 submitted
{"bridge_event": "approval", "source": "jira", ...}``. The workbook and the
alert rule in infra/ read that object with ``parse_json(extract(...))``; the
fields stay on the record too, for tests and for OpenTelemetry exporters.
Only the names below are ever copied: never a payload, address or secret.
Every such line also carries ``version``, the release that wrote it
(deskbridge.__version__), so a query can tell the lines of two releases apart
across an upgrade.
"""

from __future__ import annotations

import json
import logging

from deskbridge import __version__

DIMENSIONS = (
    "bridge_event", "route", "source", "ticket", "outcome", "http_status", "point_status", "duration_ms",
    "attempts", "update", "setting", "secret_name", "expires_on", "days_left",
    # the reconciler's sweep
    "examined", "stale_pending", "requeued", "desk_requeued", "resent", "pruned", "errors",
    # operator actions (the admin routes and the CLI) and retention
    "action", "actor", "changed", "filters", "erased",
    "examined", "stale_pending", "requeued", "desk_requeued", "resent", "pruned", "errors", "polled",
    "settled_by_poll", "overdue",
)


class StructuredLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "bridge_event", None) and not getattr(record, "structured", False):
            dims = {name: getattr(record, name) for name in DIMENSIONS if hasattr(record, name)}
            dims["version"] = __version__
            record.msg = f"{record.getMessage()} {json.dumps(dims, default=str, separators=(',', ':'))}"
            record.args = None
            record.structured = True
        return True


_FILTER = StructuredLine()


def logger(name: str) -> logging.Logger:
    """A module's logger, with its structured lines made readable by Application Insights."""
    log = logging.getLogger(name)
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)
    return log


SDK_REQUEST_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def quiet_sdk_request_logs() -> None:
    """azure-core logs every storage request and answer at INFO, which the worker ships to Application
    Insights: four lines an approval, ~0.2 ms each. Keep its warnings; a level set explicitly elsewhere wins.

    A process-wide setting, so only an entry point calls it (the handlers, when the function app loads).
    """
    sdk = logging.getLogger(SDK_REQUEST_LOGGER)
    if sdk.level == logging.NOTSET:
        sdk.setLevel(logging.WARNING)
