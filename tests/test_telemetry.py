"""The structured lines the workbook and the alert read, read the way they read them."""

import json
import re
from pathlib import Path

from conftest import fixture

ROOT = Path(__file__).resolve().parent.parent


def kql_patterns() -> set[str]:
    """The regular expression every workbook query and the alert use on `message`."""
    texts = [(ROOT / "infra/app/workbook.json").read_text(), (ROOT / "infra/app/observability.bicep").read_text()]
    found = set()
    for text in texts:
        unescaped = text.replace('\\"', '"').replace("\\\\", "\\")  # JSON string escapes
        found.update(re.findall(r"extract\(@'([^']*)', 1, message\)", unescaped))
    return found


def dimensions(message: str, pattern: str) -> dict:
    match = re.search(pattern, message)
    assert match, message
    return json.loads(match.group(1))


def test_every_query_uses_the_same_pattern():
    assert len(kql_patterns()) == 1


def test_approval_and_point_call_lines_parse_as_the_workbook_expects(bridge, caplog):
    caplog.set_level("INFO", logger="deskbridge")
    bridge.stack.point.fail_next(1, 500, method="POST")
    bridge.http("provision", fixture("syskit_jira_custom_body.json") | {"displayName": "Braces {x} \"quoted\""})
    [pattern] = kql_patterns()
    lines = [dimensions(r.getMessage(), pattern) for r in caplog.records if getattr(r, "bridge_event", "")]
    approval = next(d for d in lines if d["bridge_event"] == "approval")
    # A 500 may come after Syskit Point acted: uncertain (202), not re-sent.
    assert (approval["source"], approval["ticket"], approval["outcome"]) == ("jira", "MKT-7", "uncertain")
    assert approval["http_status"] == 202 and approval["duration_ms"] > 0
    call = next(d for d in lines if d["bridge_event"] == "point_call")
    assert call["point_status"] == 500 and "duration_ms" in call
    assert all("olga.owner@contoso.com" not in r.getMessage() for r in caplog.records)
