"""Strict JSON, with one leniency: Unicode spaces between tokens (bodies copied from web pages carry them)."""

import pytest

from deskbridge import jsonbody
from deskbridge.model import InvalidRequest

SPACES = ["\u00a0", "\u2007", "\u202f", "\u3000", "\u2028", "\u2029", "\u1680", "\x85", "\x0b"]


@pytest.mark.parametrize("space", SPACES)
def test_unicode_spaces_between_tokens_are_spaces(space):
    body = f'{{{space}"name":{space}"x",{space}"list":{space}[1,{space}2]{space}}}{space}'.encode()
    assert jsonbody.parse(body) == {"name": "x", "list": [1, 2]}


def test_strings_stay_exactly_as_sent():
    body = '{"a\u00a0b": "x\u00a0\\"\u00a0y", "c": "\u3000"}\u00a0'.encode()
    assert jsonbody.parse(body) == {"a\u00a0b": 'x\u00a0"\u00a0y', "c": "\u3000"}


@pytest.mark.parametrize("text, field, message", [
    ('{"a": tr\u00a0ue}', "body", "is not valid JSON"),          # inside a token: still an error
    ('{"a": 1\u00a02}', "body", "is not valid JSON"),
    ('{"a" "b"}', "body", "is not valid JSON"),
    ('{"a": "open\u00a0}', "body", "Unterminated string"),
    ('\u00a0', "body", "is not valid JSON"),
    ('{"a":\u00a01, "a": 2}', "a", "appears twice"),             # the other refusals hold
    ('{"a":\u00a0"\\ud800"}', "a", "lone UTF-16 surrogate"),
    ('{"a":\u00a0NaN}', "body", "NaN is not valid JSON"),
    ('{"a":\u200b1}', "body", "is not valid JSON"),              # a zero-width space is no White_Space
])
def test_everything_else_is_still_refused(text, field, message):
    with pytest.raises(InvalidRequest) as caught:
        jsonbody.parse(text.encode())
    assert caught.value.errors[0].field == field
    assert message in caught.value.errors[0].message


def test_positions_in_errors_are_those_of_the_body_sent():
    with pytest.raises(InvalidRequest) as caught:
        jsonbody.parse('{\u00a0"a":\u00a0,}'.encode())
    assert "line 1 column 8" in caught.value.errors[0].message


@pytest.mark.parametrize(
    "tail",
    ['\\"' * 300, "\\\\" * 300 + "\\", '\\"' * 300 + "\\", '\\"\u00a0' * 300],
    ids=["escaped-quotes", "backslashes-then-one", "escaped-quotes-then-backslash", "with-spaces"],
)
def test_a_string_that_never_ends_is_refused_as_such(tail):
    """Every form of unterminated string after a Unicode space (the pattern once retried from each quote)."""
    with pytest.raises(InvalidRequest) as caught:
        jsonbody.parse(f'\u00a0{{"issue":\u00a0"{tail}'.encode())
    assert caught.value.errors[0].field == "body"
    assert "Unterminated string starting at line 1 column 12" in caught.value.errors[0].message


def test_spaces_after_a_string_with_escapes_are_still_spaces():
    body = '{"a":\u00a0"x\\\\",\u00a0"b":\u00a0"\\"\u00a0"\u00a0}'.encode()
    assert jsonbody.parse(body) == {"a": "x\\", "b": '"\u00a0'}
    assert jsonbody.plain_spaces('"\\\\"\u00a0"') == '"\\\\" "'
