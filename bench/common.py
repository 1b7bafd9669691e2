"""Helpers shared by the benchmarks: a private broker, timing, and docs/benchmarks.md sections."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.local_kafka import SCRIPT
from tests.support.kafka import free_port_pair

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"


@contextlib.contextmanager
def private_broker() -> Iterator[str]:
    """A fresh single-node broker for one benchmark run (kafka-local), wiped afterwards."""
    port = free_port_pair()
    env = {**os.environ, "KAFKA_LOCAL_PORT": str(port), "KAFKA_LOCAL_HEAP": "1g"}
    subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(SCRIPT), "reset"], env=env, check=False)


@dataclass(frozen=True)
class RunFigures:
    rate: float  # operations per second
    p50_ms: float
    p99_ms: float


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def figures(latencies_s: list[float], elapsed_s: float) -> RunFigures:
    if not latencies_s:  # nothing accepted
        return RunFigures(rate=0.0, p50_ms=float("nan"), p99_ms=float("nan"))
    return RunFigures(
        rate=len(latencies_s) / elapsed_s,
        p50_ms=percentile(latencies_s, 0.50) * 1000,
        p99_ms=percentile(latencies_s, 0.99) * 1000,
    )


def median_figures(runs: list[RunFigures]) -> RunFigures:
    return RunFigures(
        rate=statistics.median(run.rate for run in runs),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=statistics.median(run.p99_ms for run in runs),
    )


def descendants(pid: int) -> list[int]:
    """A process and every process under it (HTTP workers are the zygote's children)."""
    found, waiting = [], [pid]
    while waiting:
        each = waiting.pop()
        found.append(each)
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{each}/task/{each}/children").read_text().split()
            waiting += [int(child) for child in children]
    return found


MEMORY_FILES = {"VmHWM": "status", "Pss": "smaps_rollup"}  # where /proc keeps each field


def memory_mb(pids: list[int], field: str) -> float:
    """The sum of one field of the processes' memory (``MEMORY_FILES``) in MB; a process gone
    meanwhile counts nothing."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/{MEMORY_FILES[field]}").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1]) / 1024
    return total


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def peak_rss() -> str:
    """Peak resident memory of the benchmark's own process (a gateway run as a process of its
    own is reported by its benchmark: children forked by subprocess count the parent's pages)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"Peak RSS of the benchmark's process: {own:,.0f} MB."


def write_section(name: str, body: str) -> None:
    """Replace (or add) the section ``name`` of docs/benchmarks.md, between markers."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\n{body.rstrip()}\n\n{peak_rss()}\n\n_Measured {stamp} on {machine()}._\n{end}"
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    BENCHMARKS_MD.parent.mkdir(exist_ok=True)
    BENCHMARKS_MD.write_text(text, encoding="utf-8")


HEADER = """# Benchmarks

Every figure here is measured by a script in `bench/` against a baseline measured in the same run
on the same machine (these machines are shared and noisy: compare ratios, not absolute rates).
Each section is rewritten by its script; figures are medians of several runs.
"""
