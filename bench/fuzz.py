"""The long hostile-input run: about 10,000 cases through the registered functions of every POST route.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--seed N]

Starts its own local stack (Entra ID, Key Vault, Syskit Point, Jira and
ServiceNow stand-ins, Azurite), then feeds the strategies of
tests/strategies.py to the four POST routes and holds every answer to the
properties there (never a 5xx; a refused input never reaches Syskit Point and
is named; ...). Prints one JSON line: cases run, failures, and what the
answers were. Exit status 1 when any property failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Share of the cases per kind of input (the rest of the weight goes to the plausible mutations).
MIX = {
    "wrong-body": 0.25,
    "wrong-value": 0.30,
    "missing": 0.04,
    "huge-string": 0.07,
    "unicode-address": 0.05,
    "oversized": 0.02,
    "unsigned-event": 0.03,
    "forged-signature": 0.04,
    "idempotency-key": 0.01,
    "plausible": 0.19,
}


class ErrorCount(logging.Handler):
    """Counts log records at ERROR and above (an unexpected error is logged by the handler glue)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_logger: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.by_logger[record.name] += 1


def _strategy(kind: str, route: str) -> Any:
    import strategies as hostile

    return {
        "wrong-body": hostile.every_wrong_body,
        "wrong-value": hostile.wrong_values,
        "missing": hostile.missing_fields,
        "huge-string": hostile.huge_strings,
        "unicode-address": hostile.unicode_addresses,
        "oversized": hostile.oversized,
        "unsigned-event": lambda r: hostile.every_wrong_case(r) | hostile.plausible(r),
        "forged-signature": hostile.forged_signatures,
        "idempotency-key": hostile.bad_idempotency_keys,
        "plausible": hostile.plausible,
    }[kind](route)


def _routes(kind: str) -> tuple[str, ...]:
    import strategies as hostile

    if kind in ("unicode-address", "forged-signature"):
        return hostile.APPROVAL_ROUTES
    if kind == "idempotency-key":
        return ("provision",)
    if kind == "unsigned-event":
        return ("point_events",)
    return hostile.ROUTES


def _bound(one: Any, kind: str) -> Any:
    def run(case: Any) -> None:
        one(kind, case)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000, help="cases to run in all (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = parser.parse_args(argv)

    import strategies as hostile
    from hypothesis import HealthCheck, given, seed, settings

    from bench.harness import make_storage
    from deskbridge import runtime
    from devtools.stack import LocalStack

    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.INFO)  # records reach the counter; nothing is printed
    logging.lastResort = None

    workdir = Path(tempfile.mkdtemp(prefix="fuzz-"))
    stack = LocalStack(workdir).start()
    os.environ.update(stack.process_environment)
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    settings_ = dict(os.environ) | stack.settings | hostile.JIRA_FIELDS | {
        "BRIDGE_LEDGER_TABLE": f"fuzzledger{os.getpid()}",
        "BRIDGE_DELIVERIES_TABLE": f"fuzzdeliveries{os.getpid()}",
        "BRIDGE_RETRY_QUEUE": f"fuzz-retries-{os.getpid()}",
        "BRIDGE_RETRY_POISON_QUEUE": f"fuzz-retries-{os.getpid()}-poison",
        "BRIDGE_DESK_QUEUE": f"fuzz-desk-{os.getpid()}",
        "BRIDGE_DESK_POISON_QUEUE": f"fuzz-desk-{os.getpid()}-poison",
        "POINT_RETRY_BUDGET_SECONDS": "2",
    }
    make_storage(settings_)  # what the infra templates do in Azure
    runtime.reset(settings_)
    stack.jira.add_user(*hostile.HIDDEN_OWNER)

    counts: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    by_route: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    point_calls = 0
    started = time.monotonic()

    def one(kind: str, case: hostile.Case) -> None:
        nonlocal point_calls
        if kind == "unsigned-event":
            headers = case.headers | {"Signature": "bm90IGEgc2lnbmF0dXJl", "Algorithm": "HMACSHA256"}
            oversized = len(case.body) > hostile.MAX_BODY_BYTES
            case = hostile.Case(case.route, case.body, headers, "body" if oversized else "Signature",
                                (413,) if oversized else (401,), kind)
            outcome = hostile.call(functions, case, stack.point, "not-the-key")
        else:
            outcome = hostile.call(functions, case, stack.point, stack.point.signature_key)
        counts[kind] += 1
        by_route[case.route] += 1
        statuses[outcome.status] += 1
        if isinstance(outcome.body, dict):
            outcomes[str(outcome.body.get("status"))] += 1
        point_calls += len(outcome.point_calls)
        hostile.check(case, outcome)

    total_weight = sum(MIX.values())
    for name in hostile.SIGNING_SECRET_NAMES.values():
        stack.vault.set_secret(name, "whsec_" + base64.b64encode(os.urandom(24)).decode())
    for kind, weight in MIX.items():
        # Forged signatures need routes that demand one; every other kind runs without.
        runtime.reset(settings_ | hostile.signing_settings() if kind == "forged-signature" else settings_)
        routes = _routes(kind)
        per_route = max(1, round(args.cases * weight / total_weight / len(routes)))
        for route in routes:
            run_settings = settings(
                max_examples=per_route, deadline=None, database=None, suppress_health_check=list(HealthCheck)
            )

            run = run_settings(given(case=_strategy(kind, route))(_bound(one, kind)))
            if args.seed is not None:
                run = seed(args.seed)(run)
            try:
                run()
            except Exception as exc:  # hypothesis shrank a failing case: record it, go on
                failures.append({"kind": kind, "route": route, "error": "".join(
                    traceback.format_exception_only(type(exc), exc))[:2000]})

    # Small spaces (missing fields, say) run out of distinct cases early: top up with the large ones.
    runtime.reset(settings_)
    while sum(counts.values()) < args.cases and len(failures) == 0:
        missing = args.cases - sum(counts.values())
        for kind in ("wrong-value", "wrong-body", "plausible"):
            for route in hostile.ROUTES:
                per_route = max(1, missing // 12 + 1)
                run_settings = settings(
                    max_examples=per_route, deadline=None, database=None, suppress_health_check=list(HealthCheck)
                )
                try:
                    run_settings(given(case=_strategy(kind, route))(_bound(one, kind)))()
                except Exception as exc:
                    failures.append({"kind": kind, "route": route, "error": "".join(
                        traceback.format_exception_only(type(exc), exc))[:2000]})

    stack.stop()
    report = {
        "benchmark": "fuzz",
        "cases": sum(counts.values()),
        "failures": len(failures),
        "seconds": round(time.monotonic() - started, 1),
        "point_calls": point_calls,
        "error_logs": dict(errors.by_logger),
        "by_kind": dict(counts),
        "by_route": dict(by_route),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "outcomes": dict(outcomes),
    }
    print(json.dumps(report, separators=(",", ":")))
    for failure in failures:
        print(json.dumps(failure), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
