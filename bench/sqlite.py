"""The embedded SQLite file's two ways (``gateway.store.sqlite``): a point statement run at once
on the event loop's thread (``quick=True``) against the grouped way (a thread hop, shared by the
statements that arrive meanwhile), in the same run.

    python -m bench.sqlite [--statements 4000] [--concurrency 1,32] [--runs 3]

Each run writes ``--statements`` rows of an idempotency answer's size (~300 bytes) by their key
into a fresh file, then reads each back by its key, ``--concurrency`` statements in flight at
once, both ways in turn (the order alternating run by run). Figures: the CPU time of the whole
process (every thread) per statement, and statements a second; medians of the runs. With one in
flight, each grouped statement pays a thread hop alone; with many, the grouped writes share one
commit, where each quick write commits alone.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import write_section
from gateway.runtime import run_loop
from gateway.store.sqlite import SqliteFile

SCHEMA = "CREATE TABLE answer (key TEXT PRIMARY KEY, response TEXT NOT NULL)"
RESPONSE = '{"reference": "PL-7K3M-9Q2X-HB4G", "type": "complaint.received"}' * 5
WAYS = ("quick", "grouped")
Figures = dict[str, float]  # "write_us", "read_us" (CPU a statement), "writes_s", "reads_s"


async def in_flight(
    count: int, concurrency: int, statement: Callable[[int], Awaitable[object]]
) -> None:
    """``statement(n)`` for n below ``count``, ``concurrency`` at a time."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await statement(n)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def one_run(folder: Path, count: int, concurrency: int, quick: bool) -> Figures:
    database = SqliteFile(folder / "bench.sqlite", SCHEMA)
    figures: Figures = {}
    try:

        async def write(n: int) -> None:
            await database.write(
                "INSERT INTO answer VALUES (?, ?)", (f"k{n}", RESPONSE), quick=quick
            )

        async def read(n: int) -> None:
            await database.one("SELECT response FROM answer WHERE key = ?", (f"k{n}",), quick=quick)

        for name, statement in (("write", write), ("read", read)):
            cpu, wall = time.process_time(), time.perf_counter()
            await in_flight(count, concurrency, statement)
            figures[f"{name}_us"] = (time.process_time() - cpu) / count * 1e6
            figures[f"{name}s_s"] = count / (time.perf_counter() - wall)
    finally:
        database.close()
    return figures


def measure(count: int, concurrency: int, runs: int) -> dict[str, Figures]:
    results: dict[str, list[Figures]] = {way: [] for way in WAYS}
    for run in range(runs):
        for way in WAYS if run % 2 == 0 else WAYS[::-1]:
            folder = Path(tempfile.mkdtemp(prefix="bench-sqlite-", dir=Path.cwd()))
            try:
                results[way].append(run_loop(one_run(folder, count, concurrency, way == "quick")))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(f"  run {run} {way}, {concurrency} in flight: {results[way][-1]}", flush=True)
    return {
        way: {key: statistics.median(f[key] for f in runs_of) for key in runs_of[0]}
        for way, runs_of in results.items()
    }


def table(results: dict[int, dict[str, Figures]]) -> str:
    lines = [
        "| in flight | way | CPU µs a write | CPU µs a read | writes/s | reads/s |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for concurrency, ways in results.items():
        for way, f in ways.items():
            lines.append(
                f"| {concurrency} | {way} | {f['write_us']:.0f} | {f['read_us']:.0f} "
                f"| {f['writes_s']:,.0f} | {f['reads_s']:,.0f} |"
            )
    for concurrency, ways in results.items():
        quick, grouped = ways["quick"], ways["grouped"]
        lines.append(
            f"\n{concurrency} in flight: quick over grouped, CPU a write "
            f"**{quick['write_us'] / grouped['write_us']:.2f}**, a read "
            f"**{quick['read_us'] / grouped['read_us']:.2f}**."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--statements", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {
        int(c): measure(args.statements, int(c), args.runs) for c in args.concurrency.split(",")
    }
    text = table(results)
    print(text)
    intro = (
        "## SQLite: a point statement at once, or grouped in a thread (`bench/sqlite.py`)\n\n"
        f"{args.statements:,} rows of ~300 bytes written by their key into a fresh file, then "
        "read back by their key, both ways in the same run, the order alternating; medians of "
        f"{args.runs} runs. CPU is the whole process's (every thread). `quick`: on the event "
        "loop's thread, through a connection that never waits (the web service's idempotency "
        "keys, data keys, contacts); `grouped`: in a thread, the statements arriving meanwhile "
        "sharing the hop and one commit (the notifier ledger's writes).\n\n"
    )
    write_section("sqlite", intro + text)


if __name__ == "__main__":
    main()
