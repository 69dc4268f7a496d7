"""Warm path: 1,000 distinct approvals through ``/api/provision``, and the same calls sent straight to Point.

Per approval: outbound calls by destination (Syskit Point, Entra ID, Key
Vault, storage), the bridge's wall time, its own time (wall time minus the
time its thread spent inside ``HTTPAdapter.send``, body read included) and
its thread's CPU time. Interleaved with each approval, the same
provisioning body goes to the simulator over a bare ``requests.Session``
with a token fetched once: the floor. Prints one JSON line.

    .venv/bin/python -m bench.warm [--approvals 1000] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import time
from typing import Any

from bench.harness import (
    METER,
    app_settings,
    bare_session,
    emit,
    http_request,
    local_stack,
    machine,
    ms,
    quiet_logging,
    registered,
    rss_mib,
    standin_calls,
    storage_ports,
    summary_ms,
    syskit_body,
)

WARMUP = 50


def point_token(stack: Any, session: Any) -> str:
    """One client-credentials token for the floor, as Syskit's own recipes fetch it."""
    from devtools.stack import BRIDGE_APP_ID, POINT_API_APP_ID, TENANT_ID

    answer = session.post(
        f"{stack.entra.url}/{TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": BRIDGE_APP_ID,
            "client_secret": stack.client_secret,
            "scope": f"{POINT_API_APP_ID}/.default",
        },
        timeout=(3.05, 6),
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def install_meter() -> None:
    """The meter, and regions that split own time between the bridge's code and the libraries it calls."""
    import requests
    from azure.data.tables import TableClient

    METER.install()
    for method in ("create_entity", "update_entity", "get_entity", "upsert_entity", "delete_entity"):
        METER.region("storage_sdk", TableClient, method)
    METER.region("requests", requests.Session, "request")


def run(approvals: int, profile_lines: int = 0) -> dict[str, Any]:
    quiet_logging()
    install_meter()
    with local_stack() as stack:
        from deskbridge import runtime

        bridge_runtime = runtime.reset(app_settings(stack, "warm"))
        provision = registered("provision")
        floor = bare_session()
        token = point_token(stack, floor)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        point_url = f"{stack.point.url}/v1.0/provision/teams"

        def direct(n: int) -> float:
            body = syskit_body(n, "FLOOR")
            started = time.perf_counter()
            answer = floor.post(point_url, json=body, headers=headers, timeout=(3.05, 6))
            spent = time.perf_counter() - started
            if answer.status_code != 200:
                raise RuntimeError(f"the simulator answered {answer.status_code} to the floor")
            return spent

        errors = 0
        for n in range(WARMUP):  # builds the clients, reads the secret, fetches the token, opens connections
            errors += provision(http_request("provision", syskit_body(n, "WARM"))).status_code != 201
            direct(n)
        if errors:
            raise RuntimeError(f"{errors} warm-up approvals failed")

        ports = {
            "point": stack.point.port,
            "entra": stack.entra.port,
            "key_vault": stack.vault.port,
        }
        storage = storage_ports(stack)
        before = standin_calls(stack)
        rss_before = rss_mib()
        wall: list[float] = []
        own: list[float] = []
        cpu: list[float] = []
        own_cpu: list[float] = []
        floor_wall: list[float] = []
        per_destination = {"point": 0.0, "entra": 0.0, "key_vault": 0.0, "storage": 0.0}
        seconds_by_destination = dict.fromkeys(per_destination, 0.0)
        split = {"bridge_code": 0.0, "storage_sdk": 0.0, "requests": 0.0}
        new_connections = {"point": 0, "storage": 0, "other": 0}
        profiler = cProfile.Profile() if profile_lines else None
        for n in range(approvals):
            request = http_request("provision", syskit_body(n))
            tally = METER.reset()
            if profiler:
                profiler.enable()
            cpu_started = time.thread_time()
            started = time.perf_counter()
            response = provision(request)
            spent = time.perf_counter() - started
            cpu_spent = time.thread_time() - cpu_started
            if profiler:
                profiler.disable()
            if response.status_code != 201:
                errors += 1
            wall.append(spent)
            own.append(spent - tally.seconds)
            cpu.append(cpu_spent)
            own_cpu.append(cpu_spent - tally.cpu_seconds)
            for name, port in ports.items():
                per_destination[name] += tally.calls[port]
                seconds_by_destination[name] += tally.seconds_by_port[port]
            per_destination["storage"] += sum(tally.calls[p] for p in storage)
            seconds_by_destination["storage"] += sum(tally.seconds_by_port[p] for p in storage)
            for port, count in tally.connections.items():
                where = "point" if port == ports["point"] else "storage" if port in storage else "other"
                new_connections[where] += count
            for region in ("storage_sdk", "requests"):
                split[region] += tally.region_seconds[region] - tally.region_http[region]
            split["bridge_code"] += spent - sum(tally.region_seconds.values()) - tally.region_http[""]
            if tally.streamed:
                raise RuntimeError("an answer was streamed: its body was read outside the meter")
            floor_wall.append(direct(n))
        after = standin_calls(stack)
        secret_reads = bridge_runtime.secrets.reads
        rss_after = rss_mib()

    counted = {name: after[name] - before[name] for name in after}
    counted["point"] -= approvals  # the floor's own calls
    counted["point_all"] -= approvals
    calls = {name: round(total / approvals, 3) for name, total in per_destination.items()}
    own_ms = summary_ms(own)
    ratio_mean = statistics.fmean(wall) / statistics.fmean(floor_wall)
    figures = {
        "benchmark": "warm",
        "approvals": approvals,
        "errors": errors,
        "calls_per_approval": calls,
        "calls_at_standins": {
            "point_provision": counted["point"],
            "point_other": counted["point_all"] - counted["point"],
            "entra": counted["entra"],
            "key_vault": counted["vault"],
        },
        "key_vault_reads_total": secret_reads,
        "new_connections": new_connections,  # in the measured loop: 0 means every call reused a kept-alive one
        "own_ms": own_ms,
        "own_cpu_ms": summary_ms(own_cpu),
        "cpu_ms": summary_ms(cpu),
        "wall_ms": summary_ms(wall),
        "direct_wall_ms": summary_ms(floor_wall),
        "ratio_bridge_over_direct": {
            "mean": round(ratio_mean, 2),
            "p50": round(statistics.median(wall) / statistics.median(floor_wall), 2),
        },
        "mean_ms_per_approval": {
            "point_http": ms(seconds_by_destination["point"] / approvals),
            "storage_http": ms(seconds_by_destination["storage"] / approvals),
            "entra_http": ms(seconds_by_destination["entra"] / approvals),
            "key_vault_http": ms(seconds_by_destination["key_vault"] / approvals),
            "own": ms(statistics.fmean(own)),
            "direct": ms(statistics.fmean(floor_wall)),
        },
        "own_ms_split_mean": {name: ms(total / approvals) for name, total in split.items()},
        "rss_mib": {"before": rss_before, "after": rss_after},
        "log_level": logging.getLevelName(logging.getLogger().level),
        "goals": {
            "one_point_call": calls["point"] == 1 and counted["point"] == approvals,
            "no_entra": calls["entra"] == 0 and counted["entra"] == 0,
            "no_key_vault": calls["key_vault"] == 0 and counted["vault"] == 0,
            "own_p50_under_2ms": own_ms["p50"] < 2,
            "own_p99_under_10ms": own_ms["p99"] < 10,
            "no_errors": errors == 0,
        },
        "machine": machine(),
    }
    if profiler:
        out = io.StringIO()
        order = os.environ.get("BENCH_PROFILE_SORT", "tottime")  # or cumulative
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(profile_lines)
        print(out.getvalue(), file=sys.stderr)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=1000)
    parser.add_argument("--profile", type=int, default=0, metavar="LINES", help="cProfile the bridge; top LINES")
    args = parser.parse_args(argv)
    figures = run(args.approvals, args.profile)
    emit(figures)
    return 0 if all(figures["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
