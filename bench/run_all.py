"""Every benchmark of ``bench/``, one after the other, each against its own baseline measured
in the same run; each rewrites its section of docs/benchmarks.md.

    python -m bench.run_all [--quick] [--only publish,notifier]

One at a time, never together: these machines have two cores, and two benchmarks side by side
would measure each other. ``--quick`` runs fewer repeats (a smoke test of the scripts; figures
for docs/benchmarks.md come from a full run). A benchmark that fails is reported at the end and
makes the exit status non-zero; the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

FULL: dict[str, list[str]] = {
    "publish": [],
    "normalize": [],
    "webhook": [],
    "email": [],
    "notifier": [],
    "postal": [],
    "tracker": [],
    "peer": [],
    "memory": [],
    "e2e": [],
    "flame": [],
    "claims": [],
    "sqlite": [],
}
QUICK: dict[str, list[str]] = {
    "publish": ["--events", "5000", "--runs", "1"],
    "normalize": ["--repeat", "1"],
    "webhook": ["--duration", "3", "--rates", "250,1000", "--runs", "1"],
    "email": ["--messages", "500", "--live", "20"],
    "notifier": ["--complaints", "500", "--runs", "1", "--paced", "50"],
    "postal": ["--copies", "1", "--runs", "1"],
    "tracker": ["--complaints", "2000", "--duration", "5", "--backends", "sqlite"],
    "peer": ["--duration", "3", "--runs", "1"],
    "memory": ["--workers", "1,2", "--runs", "1"],
    "e2e": ["--duration", "5", "--runs", "1"],
    "flame": ["--duration", "3"],
    "claims": ["--objects", "500", "--runs", "1"],
    "sqlite": ["--statements", "500", "--runs", "1"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats: check the scripts")
    parser.add_argument("--only", default="", help="comma-separated names, e.g. publish,postal")
    args = parser.parse_args()
    plans = QUICK if args.quick else FULL
    names = [name for name in args.only.split(",") if name] or list(plans)
    failed, took = [], {}
    for name in names:
        started = time.monotonic()
        print(f"== bench.{name}", flush=True)
        result = subprocess.run([sys.executable, "-m", f"bench.{name}", *plans[name]], check=False)
        took[name] = time.monotonic() - started
        if result.returncode != 0:
            failed.append(name)
    for name in names:
        state = "FAILED" if name in failed else "ok"
        print(f"bench.{name:<10} {state:<7} {took[name]:7.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
