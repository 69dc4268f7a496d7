"""The body that cost minutes (issue 21, item 3) answered like any other bad body, through /api/jira.

Its cost is measured by ``bench/readers.py`` (docs/performance.md): a test asserts the answer, never a time.
"""

from __future__ import annotations


def test_unterminated_string_of_escaped_quotes_after_a_no_break_space_through_jira(bridge):
    head = '\u00a0{"webhookEvent": "jira:issue_updated", "issue": {"key": "HR-42", "fields": {"summary": "'
    body = head.encode() + b'\\"' * 100_000  # 200 KB, under the 256 KB limit: it is read, not refused for size
    assert len(body) < int(bridge.settings.get("BRIDGE_MAX_BODY_BYTES", "262144"))
    status, answer = bridge.http("jira", body)
    assert status == 400, answer
    [error] = answer["errors"]
    assert error["field"] == "body"
    assert error["message"].startswith(f"is not valid JSON: Unterminated string starting at line 1 column {len(head)}")
    assert bridge.stack.point.calls == [] and bridge.record("jira", "HR-42") is None
