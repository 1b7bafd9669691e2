"""The embedded claim-check store's durable raw copy: the journal's group commit against each
object written and synced one by one (the store's path before it, still its path for objects
over ``IN_MEMORY_BYTES``), in the same run.

    python -m bench.claims [--objects 3000] [--concurrency 1,16,64] [--runs 3]

Each run stores ``--objects`` distinct raw bodies of 3 KB (a web form's size) into a fresh data
folder, ``--concurrency`` of them in flight at once (the submissions a worker serves together),
with both ways in turn (the order alternating run by run). Figures: objects stored a second,
the latency of one ``put`` (p50, p99), and the CPU time of the whole process (every thread) per
object; medians of the runs. Both ways end with every object durable: one by one, temp file,
fsync, rename, fsync of its folder, in a thread hop each; the journal, a batch of records
appended and synced once, then each object placed by a link (``gateway.store.journal``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import percentile, write_section
from gateway.runtime import run_loop
from gateway.store.claims import FileClaimStore

OBJECT_BYTES = 3 * 1024
Put = Callable[[FileClaimStore, bytes], Awaitable[object]]


async def one_by_one(store: FileClaimStore, data: bytes) -> object:
    return await asyncio.to_thread(store._put_known, data, hashlib.sha256(data).hexdigest())


async def journaled(store: FileClaimStore, data: bytes) -> object:
    return await store.put(data)


WAYS: dict[str, Put] = {"one by one": one_by_one, "group commit": journaled}


@dataclass(frozen=True)
class Figures:
    per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float


async def stored(put: Put, objects: int, concurrency: int, folder: Path) -> Figures:
    store = FileClaimStore(folder)
    await store.open()
    bodies = [os.urandom(OBJECT_BYTES) for _ in range(objects)]
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(data: bytes) -> None:
        async with gate:
            started = time.perf_counter()
            await put(store, data)
            latencies.append(time.perf_counter() - started)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(data) for data in bodies))
    await store.close()  # the journal's checkpoint counted too
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Figures(
        objects / wall,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        cpu / objects * 1000,
    )


def measure(objects: int, concurrency: int, runs: int) -> dict[str, Figures]:
    found: dict[str, list[Figures]] = {way: [] for way in WAYS}
    for run in range(runs):
        order = list(WAYS) if run % 2 == 0 else list(reversed(WAYS))
        for way in order:
            folder = Path(tempfile.mkdtemp(prefix="bench-claims-", dir=Path.cwd()))
            try:
                found[way].append(run_loop(stored(WAYS[way], objects, concurrency, folder)))
            finally:
                shutil.rmtree(folder)
    return {
        way: Figures(*(statistics.median(getattr(f, name) for f in runs_of) for name in FIELDS))
        for way, runs_of in found.items()
    }


FIELDS = ("per_second", "p50_ms", "p99_ms", "cpu_ms")


def table(results: dict[int, dict[str, Figures]]) -> str:
    lines = [
        "| in flight | way | objects/s | put p50 (ms) | put p99 (ms) | CPU per object (ms) "
        "| objects/s: group / one by one | CPU: group / one by one |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for concurrency, ways in results.items():
        base, group = ways["one by one"], ways["group commit"]
        for way, f in ways.items():
            ratios = (
                f"{group.per_second / base.per_second:.2f} | {group.cpu_ms / base.cpu_ms:.2f}"
                if way == "group commit"
                else " | "
            )
            lines.append(
                f"| {concurrency} | {way} | {f.per_second:,.0f} | {f.p50_ms:.2f} | "
                f"{f.p99_ms:.2f} | {f.cpu_ms:.3f} | {ratios} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=3000)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {
        int(c): measure(args.objects, int(c), args.runs) for c in args.concurrency.split(",")
    }
    text = table(results)
    print(text)
    intro = (
        "## The durable raw copy: group commit against one by one (`bench/claims.py`)\n\n"
        f"{args.objects:,} distinct objects of {OBJECT_BYTES // 1024} KB into the embedded "
        "store, a fresh folder each run (beside the working directory), both ways in the same "
        f"run, the order alternating; medians of {args.runs} runs. CPU is the whole process's "
        "(every thread), the journal's checkpoint included.\n\n"
    )
    write_section("claims", intro + text)


if __name__ == "__main__":
    main()
