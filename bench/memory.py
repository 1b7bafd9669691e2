"""Memory of ``intake-gateway run --only http`` by number of HTTP workers: the workers forked from
the zygote once the language models are loaded (the default) against each worker started fresh
(``GATEWAY_HTTP_WORKERS_FORKED=false``, the baseline), in the same run.

    python -m bench.memory [--workers 1,2,3] [--runs 2]

Each gateway is started on a fresh data folder and a private broker, served a warm-up load of
distinct signed submissions (every process has parsed, normalised, detected the language and
published), then measured: **PSS** (proportional set size: a page shared by n processes counts
1/n in each, so the sum is what the machine spends) summed over the main process and every
process under it, from ``/proc/PID/smaps_rollup``. The order of the two modes alternates run by
run; medians. Targets (issue 29): 2 workers <= 550 MB, each further worker <= 150 MB.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import descendants, memory_mb, private_broker, write_section
from bench.webhook import gateway_runs, served
from gateway.admin import create_topics
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings

MODES = {"forked": "true", "fresh": "false"}
SETTLE_S = 2.0  # after the warm-up: let the workers' buffers return


def measured_pss(bootstrap: str, workers: int, forked: str) -> float:
    """PSS (MB) of the whole gateway with ``workers`` HTTP processes, after a warm-up."""
    with served(bootstrap, workers, GATEWAY_HTTP_WORKERS_FORKED=forked) as (port, pid):
        run_loop(gateway_runs(port, [150.0], 3, f"memory-{workers}-{forked}-{time.time_ns()}"))
        time.sleep(SETTLE_S)
        return memory_mb(descendants(pid), "Pss")


def measure(worker_counts: list[int], runs: int) -> dict[str, dict[int, float]]:
    found: dict[str, dict[int, list[float]]] = {
        mode: {count: [] for count in worker_counts} for mode in MODES
    }
    with private_broker() as bootstrap:
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        for run in range(runs):
            order = list(MODES) if run % 2 == 0 else list(reversed(MODES))
            for workers in worker_counts:
                for mode in order:
                    pss = measured_pss(bootstrap, workers, MODES[mode])
                    print(f"  {mode:<6} {workers} worker(s): {pss:,.0f} MB", flush=True)
                    found[mode][workers].append(pss)
    return {
        mode: {count: statistics.median(values) for count, values in by_count.items()}
        for mode, by_count in found.items()
    }


def table(result: dict[str, dict[int, float]], runs: int) -> str:
    counts = sorted(result["forked"])
    lines = [
        "## Memory of the HTTP workers (`bench/memory.py`)",
        "",
        "`intake-gateway run --only http` with 1 to 3 HTTP workers, forked from the zygote once "
        "the language models are loaded (one copy for every process) against each worker "
        "started fresh with its own models (`GATEWAY_HTTP_WORKERS_FORKED=false`), in the same "
        "run, the order alternating. PSS summed over every process of the gateway, after a "
        f"warm-up of distinct submissions; medians of {runs} runs. Targets: 2 workers <= 550 MB, "
        "each further worker <= 150 MB.",
        "",
        "| HTTP workers | started fresh (MB) | forked (MB) | forked / fresh"
        " | forked: added by this worker (MB) |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for index, count in enumerate(counts):
        fresh, forked = result["fresh"][count], result["forked"][count]
        added = forked - result["forked"][counts[index - 1]] if index else float("nan")
        added_text = f"{added:,.0f}" if index else "(the first)"
        lines.append(
            f"| {count} | {fresh:,.0f} | {forked:,.0f} | {forked / fresh:.2f} | {added_text} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,2,3", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]
    result = measure(counts, args.runs)
    text = table(result, args.runs)
    print(text)
    write_section("memory", text)


if __name__ == "__main__":
    main()
