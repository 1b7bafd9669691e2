"""The tracker: events folded per second on one core, a rebuild from 100,000 complaints' events,
and the indicators endpoint's latency at 50 requests/s over them.

    python -m bench.tracker [--complaints 100000] [--backends sqlite,postgres] [--rate 50]
                            [--duration 60]

A private broker gets the events of ``--complaints`` complaints over twelve months (received;
most acknowledged, some late; most answered, some late; some incomplete, anonymous, rated:
about 2.8 events each). Baseline, in the same run: a bare aiokafka consumer reading the same
records (``json.loads`` each). Then, per state backend:

- **fold**: the tracker service (``TrackerService``, its consumer group from the first offset)
  folds every event into a fresh store, the benchmark's process pinned to one core (the
  broker, and PostgreSQL, run on the other); events/s from its start to the last event folded
  (target >= 5,000/s);
- **rebuild**: ``tracker rebuild`` over the same topics (empties the store and folds again);
- **indicators**: ``intake-gateway run --only http`` on that store, ``GET /v1/indicators`` at
  a fixed rate (open loop: each request's latency counts from when it was due), with
  ``GET /healthz`` at the same rate as the baseline; the first request (computed cold) apart
  (target: p99 <= 100 ms). The figures are computed again every 30 s
  (``GATEWAY_TRACKER_INDICATORS_REFRESH_S``) behind the answers, within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bench.backends import shared_state
from bench.common import percentile, private_broker, write_section
from gateway.admin import create_topics
from gateway.events import topics
from gateway.events.common import Channel
from gateway.events.envelope import CloudEvent
from gateway.events.notification import Medium
from gateway.logs import configure_logging
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.backends import StateBackend, open_state_backend
from gateway.tracker.assembly import complaint_fold
from gateway.tracker.rebuild import rebuild
from gateway.tracker.service import TrackerService, tracker_consumer
from tests.support.kafka import free_port
from tests.support.tracker import acknowledged, feedback, received, status

CHANNELS = list(Channel)
START = datetime(2025, 12, 1, 14, tzinfo=UTC)


def complaint_events(number: int, rng: random.Random) -> list[CloudEvent[Any]]:
    """One complaint's life: a mix of the outcomes the indicators count."""
    name = f"bench-{number}"
    at = START + timedelta(days=rng.randrange(365), minutes=rng.randrange(600))
    flags = ("needs_review",) if rng.random() < 0.1 else ()
    person: dict[str, Any] = {}
    if rng.random() < 0.05:
        person = {"name": None, "email": None, "anonymous": True}
    channel = CHANNELS[number % len(CHANNELS)]
    events = [received(name, at, channel=channel, flags=flags, **person)]
    if not person and rng.random() < 0.9:
        late = rng.random() < 0.2
        medium = Medium.EMAIL if channel != Channel.POSTAL else Medium.LETTER
        events.append(acknowledged(name, at + timedelta(days=5 if late else 1), medium))
    if rng.random() < 0.75:
        answered = at + timedelta(days=rng.choice([10, 20, 25, 30, 40]))
        events.append(status(name, "answered", answered, "Réponse envoyée."))
        if rng.random() < 0.3:
            events.append(feedback(name, rng.randint(1, 5), answered + timedelta(days=2)))
    return events


async def publish_all(kafka: KafkaSettings, complaints: int) -> int:
    rng = random.Random(22)
    published = 0
    async with KafkaPublisher(kafka) as publisher:
        for start in range(0, complaints, 1000):
            batch = [
                event
                for number in range(start, min(complaints, start + 1000))
                for event in complaint_events(number, rng)
            ]
            await asyncio.gather(*(publisher.publish(event) for event in batch))
            published += len(batch)
    return published


async def bare_read(kafka: KafkaSettings, total: int) -> float:
    """Baseline: the records read and parsed as JSON, nothing more; events/s."""
    consumer = AIOKafkaConsumer(
        topics.COMPLAINTS,
        topics.NOTIFICATIONS,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    started = time.perf_counter()
    await consumer.start()
    read = 0
    try:
        while read < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    json.loads(record.value or b"{}")
                read += len(records)
    finally:
        await consumer.stop()
    return read / (time.perf_counter() - started)


def folded() -> float:
    return REGISTRY.get_sample_value("gateway_tracker_events_total", {"outcome": "folded"}) or 0.0


@contextlib.contextmanager
def one_core() -> Iterator[None]:
    """This process on one core while the block runs."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


async def fold_rate(settings: GatewaySettings, backend: StateBackend, total: int) -> float:
    """The tracker service from the first offset until every event is folded; events/s."""
    consumer = tracker_consumer(settings.kafka, f"bench-tracker-{uuid.uuid4().hex[:6]}")
    fold = complaint_fold(settings)
    async with KafkaPublisher(settings.kafka) as publisher:
        service = TrackerService(consumer, backend.tracker, fold, publisher, batch_size=500)
        before = folded()
        started = time.perf_counter()
        task = asyncio.create_task(service.run())
        try:
            while True:
                if folded() - before >= total:
                    return total / (time.perf_counter() - started)
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int


@contextlib.asynccontextmanager
async def http_gateway(environment: dict[str, str]) -> AsyncIterator[str]:
    port = free_port()
    env = {**os.environ, **environment, "GATEWAY_HTTP_PORT": str(port)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--only",
        "http",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    await client.get("/healthz")
                    break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=60)


async def paced(url: str, path: str, rate: float, duration_s: float) -> Latency:
    """Open loop: request i is due at start + i/rate; its latency counts from then."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1

        async def one(due: float) -> None:
            await asyncio.sleep(max(0.0, due - loop.time()))
            answer = await client.get(path)
            answer.raise_for_status()
            latencies.append(loop.time() - due)

        count = int(rate * duration_s)
        await asyncio.gather(*(one(start + n / rate) for n in range(count)))
    return Latency(
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies) * 1000,
        requests=len(latencies),
    )


@dataclass(frozen=True)
class BackendRun:
    name: str
    fold_per_s: float
    rebuild_s: float
    cold_ms: float
    indicators: Latency
    healthz: Latency


async def on_backend(
    name: str, kafka: KafkaSettings, total: int, args: argparse.Namespace
) -> BackendRun:
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        environment = {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_KAFKA_BOOTSTRAP": kafka.bootstrap,
        }
        if name == "postgres":
            state = stack.enter_context(shared_state())
            environment["GATEWAY_STATE_URL"] = state.url
        settings = GatewaySettings.model_validate(
            {
                "kafka": kafka,
                "data_dir": data_dir,
                "state_url": SecretStr(environment["GATEWAY_STATE_URL"])
                if "GATEWAY_STATE_URL" in environment
                else None,
            }
        )
        backend = await open_state_backend(settings)
        try:
            with one_core():
                rate = await fold_rate(settings, backend, total)
                done = await rebuild(kafka, backend.tracker, complaint_fold(settings))
        finally:
            await backend.close()
        async with http_gateway(environment) as url:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                started = time.perf_counter()
                (await client.get("/v1/indicators")).raise_for_status()
                cold_ms = (time.perf_counter() - started) * 1000
            healthz = await paced(url, "/healthz", args.rate, args.duration / 3)
            indicators = await paced(url, "/v1/indicators", args.rate, args.duration)
        return BackendRun(name, rate, done.seconds, cold_ms, indicators, healthz)


def report(complaints: int, total: int, bare: float, runs: list[BackendRun], rate: float) -> str:
    lines = [
        "## Tracker (`bench/tracker.py`)",
        "",
        f"{complaints:,} complaints over twelve months, {total:,} events on the two topics "
        "(received; 90 % acknowledged, a fifth of them late; 75 % answered, some late; "
        "10 % incomplete; 5 % anonymous; 30 % of the answered rated). Baseline in the same "
        f"run: a bare aiokafka consumer reading and parsing them, **{bare:,.0f} events/s**.",
        "",
        "| state backend | folded on one core (events/s) | ratio to the bare read | rebuild "
        f"(s) | indicators, first (ms) | indicators at {rate:.0f}/s p50 / p99 / max (ms) | "
        "`/healthz` at the same rate p50 / p99 (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        shown = run.indicators
        lines.append(
            f"| {run.name} | {run.fold_per_s:,.0f} | {run.fold_per_s / bare:.2f} | "
            f"{run.rebuild_s:.1f} | {run.cold_ms:,.0f} | {shown.p50_ms:.1f} / {shown.p99_ms:.1f} "
            f"/ {shown.max_ms:.0f} | {run.healthz.p50_ms:.1f} / {run.healthz.p99_ms:.1f} |"
        )
    lines += [
        "",
        "Targets: >= 5,000 events/s folded on one core; the indicators' p99 <= 100 ms at 50 "
        "requests/s over 100,000 complaints. The indicators are computed in SQL (counts grouped "
        "by month, channel and outcome, and histograms of the delays) and kept for 30 s; the "
        "first request of a process waits for them (`first`), the later ones are served the "
        "figures at hand while they are computed again behind them.",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> str:
    configure_logging()
    with private_broker() as bootstrap:
        kafka = KafkaSettings(bootstrap=bootstrap)
        await create_topics(kafka)
        total = await publish_all(kafka, args.complaints)
        with one_core():
            bare = await bare_read(kafka, total)
        runs = [
            await on_backend(name, kafka, total, args) for name in args.backends.split(",") if name
        ]
    return report(args.complaints, total, bare, runs, args.rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--rate", type=float, default=50.0, help="indicators requests/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds at that rate")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    body = asyncio.run(main_async(args))
    print(body)
    if not args.no_write:
        write_section("tracker", body)


if __name__ == "__main__":
    main()
