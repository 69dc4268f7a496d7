"""Strict JSON for request bodies: UTF-8, no duplicate keys, bounded nesting.

One leniency: Unicode whitespace (U+00A0 no-break space and the rest of
:data:`UNICODE_SPACES`) between tokens is read as a plain space, since
bodies copied from web pages carry it (Syskit's published Jira rule holds
two). Inside strings nothing is changed, and inside a token it is still an
error.

Whatever :func:`parse` returns can be written out again as UTF-8 JSON (to
Azure Table, to Syskit Point, into an answer): it holds no lone surrogate
(``"\\ud800"``), no infinite number (``1e400``) and no number longer than
:data:`MAX_NUMBER_DIGITS`. Every refusal is an :class:`InvalidRequest` naming
the problem; nothing else escapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from deskbridge.model import FieldError, InvalidRequest

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 400
JSON_MEDIA_TYPES = ("application/json", "application/json-patch+json", "text/json")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Unicode White_Space characters that JSON does not allow between tokens (it allows space, tab, CR and LF).
UNICODE_SPACES = "\x0b\x0c\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_UNICODE_SPACE = re.compile(f"[{UNICODE_SPACES}]")
# A JSON string, or one Unicode space outside strings (strings are matched whole, so never split).
# Linear time: a quote always starts a match that runs to the string's closing quote or, for a string
# that never ends, to the end of the text (a lone backslash there included), and the quantifiers are
# possessive. So no character is scanned twice: a string that failed to match at one quote can not be
# tried again from every quote inside it (the quadratic case of issue 21: an unterminated string of
# escaped quotes). Inside an unterminated string nothing is replaced; json.loads refuses it anyway.
_STRING_OR_SPACE = re.compile(rf'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|[{UNICODE_SPACES}]', re.DOTALL)
_SURROGATE_PROBLEM = "holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not Unicode text"


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


def _no_duplicates_nor_surrogate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, _ in pairs:
        if not _encodable(key):
            raise InvalidRequest([FieldError("body", "an object key " + _SURROGATE_PROBLEM)])
    return _no_duplicates(pairs)


def _reject_constant(name: str) -> Any:
    raise InvalidRequest([FieldError("body", f"{name} is not valid JSON")])


def _too_long(text: str) -> InvalidRequest:
    return InvalidRequest(
        [FieldError("body", f"holds a number of {len(text)} characters; at most {MAX_NUMBER_DIGITS} are accepted")]
    )


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _too_long(text)
    return int(text)


def _finite(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _too_long(text)
    number = float(text)
    if not math.isfinite(number):
        raise InvalidRequest([FieldError("body", f"holds a number too large to represent ({text[:40]})")])
    return number


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_at(value: Any, path: str) -> str | None:
    """Where the first string holding a lone surrogate is (keys are checked while parsing)."""
    if isinstance(value, str):
        return None if _encodable(value) else path or "body"
    if isinstance(value, dict):
        items: Any = ((f"{path}.{key}" if path else key, item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for inner, item in items:
        found = _surrogate_at(item, inner)
        if found is not None:
            return found
    return None


def plain_spaces(text: str) -> str:
    """Unicode spaces between tokens as ASCII spaces; strings as they are (same length, same positions)."""
    if _UNICODE_SPACE.search(text) is None:
        return text
    return _STRING_OR_SPACE.sub(lambda m: m.group() if m.group().startswith('"') else " ", text)


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
    """The JSON value of a request body; raises :class:`InvalidRequest` (400) saying what is wrong."""
    if not body or not body.strip():
        raise InvalidRequest([FieldError("body", "is empty; send a JSON object")])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest([FieldError("body", f"is not valid UTF-8 (byte {exc.start})")]) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = plain_spaces(text)
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise InvalidRequest([FieldError("body", f"is nested more than {MAX_DEPTH} levels deep")])
    # Only a \uD8xx-\uDFxx escape can produce a lone surrogate (the UTF-8 decode above refuses
    # encoded ones), so the slower checks run only when one is present.
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    try:
        parsed = json.loads(
            text,
            object_pairs_hook=_no_duplicates_nor_surrogate_keys if surrogates else _no_duplicates,
            parse_constant=_reject_constant,
            parse_int=_integer,
            parse_float=_finite,
        )
    except json.JSONDecodeError as exc:
        what = exc.msg.removesuffix(" at")  # "Invalid control character at", "Unterminated string starting at"
        raise InvalidRequest(
            [FieldError("body", f"is not valid JSON: {what} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except RecursionError:
        raise InvalidRequest([FieldError("body", "is nested too deeply")]) from None
    if surrogates:
        where = _surrogate_at(parsed, "")
        if where is not None:
            raise InvalidRequest([FieldError(where[:100], _SURROGATE_PROBLEM)])
    return parsed
