"""Run the benchmarks, each in its own process; each prints one JSON line of figures.

    bench/run                  # warm, burst, cold, readers
    bench/run warm cold        # some of them
    bench/run warm --approvals 300
    bench/run readers          # every reader of caller input on pathological bodies of 16, 64 and 256 KB
    bench/run sweep            # the reconciler over 100,000 ledger records (about 2 minutes, not in the default run)

The exit status is 1 when any benchmark misses a goal (its ``goals`` say which).
"""

from __future__ import annotations

import subprocess
import sys

from bench.harness import ROOT

BENCHMARKS = ("warm", "burst", "cold", "readers", "sweep")
DEFAULT = ("warm", "burst", "cold", "readers")


def main(argv: list[str]) -> int:
    names = [a for a in argv if a in BENCHMARKS] or list(DEFAULT)
    extra = [a for a in argv if a not in BENCHMARKS]
    worst = 0
    for name in names:
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *extra], cwd=ROOT, check=False)
        worst = max(worst, done.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
