"""The trigger table as the Functions host reads it: routes, methods, auth levels, queues.

A change here changes the product's external interface: update the
snapshot (tests/snapshots/functions.json) on purpose, and the README with it.
"""

import json
import os
from pathlib import Path

from conftest import functions

SNAPSHOT = Path(__file__).parent / "snapshots" / "functions.json"


def current() -> dict:
    return {name: json.loads(f.get_function_json()) for name, f in sorted(functions().items())}


def test_trigger_table_matches_snapshot():
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current(), indent=2, sort_keys=True) + "\n")
    assert current() == json.loads(SNAPSHOT.read_text())


def test_only_health_is_anonymous():
    levels = {name: spec["bindings"][0].get("authLevel") for name, spec in current().items()
              if spec["bindings"][0]["type"] == "httpTrigger"}
    assert levels == {"health": "ANONYMOUS", "jira": "FUNCTION", "point_events": "FUNCTION",
                      "openapi": "FUNCTION", "provision": "FUNCTION", "request_status": "FUNCTION",
                      "servicenow": "FUNCTION", "admin_list": "ADMIN", "admin_show": "ADMIN",
                      "admin_replay": "ADMIN", "admin_erase": "ADMIN"}


def test_no_route_is_one_the_host_keeps_for_itself():
    """The Functions host refuses to register a route under admin/ (its own API) or runtime/ (its webhooks)."""
    bindings = [spec["bindings"][0] for spec in current().values()]
    routes = [binding["route"] for binding in bindings if binding["type"] == "httpTrigger"]
    assert routes and [r for r in routes if r.split("/")[0].lower().startswith(("admin", "runtime"))] == []


def test_importing_the_app_needs_no_settings():
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POINT_", "KEY_VAULT", "JIRA_", "AzureWebJobs"))}
    result = subprocess.run([sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
                            cwd=Path(__file__).parent.parent, env=clean, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "17"
