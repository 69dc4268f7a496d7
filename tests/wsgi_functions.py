"""A tiny WSGI front for the registered HTTP functions, so WSGI tools (schemathesis) can call the bridge in-process.

It does what the Functions host does between the socket and the function, and no more: it matches
the request to a registered route (the route templates the host reads from ``get_function_json``),
percent-decodes the route parameters, builds a ``func.HttpRequest`` and calls the user function.
The function key is the host's business and is not checked here; an unmatched route or method
is answered 404 with an empty body, as the host does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

Signer = Callable[[str, dict[str, str], bytes], dict[str, str]]


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    call: Callable[[func.HttpRequest], func.HttpResponse]


def http_functions(functions: Mapping[str, Any]) -> list[HttpFunction]:
    """The HTTP-triggered functions, as (name, route template, methods), from what the host reads."""
    found = []
    for name, function in functions.items():
        trigger = json.loads(function.get_function_json())["bindings"][0]
        if trigger["type"] != "httpTrigger":
            continue
        route = trigger["route"]
        parts = [
            f"(?P<{segment[1:-1]}>[^/]+)" if segment.startswith("{") and segment.endswith("}") else re.escape(segment)
            for segment in route.split("/")
        ]
        found.append(
            HttpFunction(
                name,
                route,
                frozenset(m.upper() for m in trigger["methods"]),
                re.compile("/api/" + "/".join(parts)),
                function.get_user_function(),
            )
        )
    return found


class FunctionsWSGI:
    """WSGI application over the registered functions; ``signer`` may add signature headers per function."""

    def __init__(self, functions: Mapping[str, Any], signer: Signer | None = None) -> None:
        self.routes = http_functions(functions)
        self.signer = signer
        self.calls: list[tuple[str, int]] = []  # (function name, HTTP status) of every call made

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        # The raw path, so an encoded '/' stays inside its segment (as the host's router sees it).
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        path = urlsplit(raw).path
        query = environ.get("QUERY_STRING", "")
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        for key, header in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers[header] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        for function in self.routes:
            match = function.pattern.fullmatch(path)
            if match and method in function.methods:
                break
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        if self.signer:
            headers = self.signer(function.name, headers, body)
        request = func.HttpRequest(
            method,
            "http://localhost:7071" + raw,
            headers=headers,
            params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params={key: unquote(value, errors="replace") for key, value in match.groupdict().items()},
            body=body,
        )
        response = function.call(request)
        self.calls.append((function.name, response.status_code))
        payload = response.get_body()
        sent = [("Content-Type", response.mimetype + (f"; charset={response.charset}" if response.charset else ""))]
        sent.append(("Content-Length", str(len(payload))))
        start_response(f"{response.status_code} {_REASONS.get(response.status_code, 'Status')}", sent)
        return [payload]


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
