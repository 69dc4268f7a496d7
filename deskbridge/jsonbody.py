"""Strict JSON for request bodies: UTF-8, no duplicate keys, bounded nesting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deskbridge.model import FieldError, InvalidRequest

MAX_DEPTH = 32
JSON_MEDIA_TYPES = ("application/json", "application/json-patch+json", "text/json")


def check_content_type(headers: Mapping[str, str]) -> None:
    """A body must be JSON; an absent Content-Type is tolerated (some desks send none)."""
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise InvalidRequest(
            [FieldError("Content-Type", f"must be application/json, not {media_type[:60]!r}")], http_status=415
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidRequest([FieldError(key[:100], "appears twice in the same object")])
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidRequest([FieldError("body", f"{name} is not valid JSON")])


def _depth(text: str) -> int:
    """Deepest nesting of [ and { outside strings, without building anything."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse(body: bytes) -> Any:
    if not body or not body.strip():
        raise InvalidRequest([FieldError("body", "is empty; send a JSON object")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest([FieldError("body", f"is not valid UTF-8 (byte {exc.start})")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise InvalidRequest([FieldError("body", f"is nested more than {MAX_DEPTH} levels deep")])
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            [FieldError("body", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except RecursionError:
        raise InvalidRequest([FieldError("body", "is nested too deeply")]) from None
