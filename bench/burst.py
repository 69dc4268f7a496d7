"""Burst: 500 distinct approvals through 16 threads on a cold worker, as the Python worker's thread pool runs them.

The runtime starts empty (no credential, no secret, no token, no
connection), so the burst also shows that concurrent first callers share
one Key Vault read and one Syskit Point token. Prints one JSON line.

    .venv/bin/python -m bench.burst [--approvals 500] [--threads 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.harness import (
    METER,
    app_settings,
    emit,
    http_request,
    local_stack,
    machine,
    quiet_logging,
    registered,
    rss_mib,
    storage_ports,
    summary_ms,
    syskit_body,
)


def run(approvals: int, threads: int) -> dict[str, Any]:
    from devtools.stack import BRIDGE_APP_ID, VAULT_READER_ID

    quiet_logging()
    METER.install()
    with local_stack() as stack:
        from deskbridge import runtime

        bridge_runtime = runtime.reset(app_settings(stack, "burst"))
        provision = registered("provision")
        requests_in = [http_request("provision", syskit_body(n, "BURST")) for n in range(approvals)]
        storage = storage_ports(stack)
        storage_before = sum(METER.total[p] for p in storage)

        def approve(request: Any) -> tuple[int, float]:
            started = time.perf_counter()
            try:
                status = provision(request).status_code
            except Exception:  # counted as an error, never hidden
                status = 0
            return status, time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker") as pool:
            results = list(pool.map(approve, requests_in))
        elapsed = time.perf_counter() - started

        token_requests = [c.form().get("client_id", "") for c in stack.entra.calls_to("POST")]
        vault_gets = stack.vault.calls_to("GET", "/secrets/")
        figures = {
            "benchmark": "burst",
            "approvals": approvals,
            "threads": threads,
            "errors": sum(status != 201 for status, _ in results),
            "statuses": sorted({status for status, _ in results}),
            "point_provision_calls": len(stack.point.provision_calls()),
            "point_token_requests": token_requests.count(BRIDGE_APP_ID),
            "key_vault_token_requests": token_requests.count(VAULT_READER_ID),
            "entra_calls": len(stack.entra.calls),
            "key_vault_secret_reads": bridge_runtime.secrets.reads,
            "key_vault_http_calls": len(stack.vault.calls),
            "key_vault_get_answers": len(vault_gets),
            "storage_calls": sum(METER.total[p] for p in storage) - storage_before,
            "seconds": round(elapsed, 3),
            "approvals_per_second": round(approvals / elapsed, 1),
            "latency_ms": summary_ms([seconds for _, seconds in results]),
            "rss_mib": rss_mib(),
            "machine": machine(),
        }
    figures["goals"] = {
        "one_point_token": figures["point_token_requests"] == 1,
        "one_key_vault_read": figures["key_vault_secret_reads"] == 1,
        "every_approval_one_point_call": figures["point_provision_calls"] == approvals,
        "no_errors": figures["errors"] == 0,
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=500)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)
    figures = run(args.approvals, args.threads)
    emit(figures)
    return 0 if all(figures["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
