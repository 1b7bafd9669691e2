"""Publisher throughput and latency vs a bare aiokafka producer with the same settings.

    python -m bench.publish [--events 20000] [--concurrency 500] [--runs 3]

Every side publishes the same complaint.received events to a fresh local broker with the same
producer options (acks=all, idempotent, same linger and batch size), with the same number of
sends awaiting acknowledgement. The baseline is a bare aiokafka producer that serialises each
event in its send loop, as any publisher of these events must; the gateway adds routing, the
in-flight bound, the acknowledgement deadline, typed errors and metrics. A third side, handed
ready bytes, shows what serialisation itself costs. Target: the publisher reaches at least
0.8 of the baseline's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.common import RunFigures, figures, median_figures, private_broker, write_section
from gateway.admin import create_topics
from gateway.events import topics
from gateway.events.common import Channel, Person, SourceMessage
from gateway.events.complaint import ComplaintReceived, Kind
from gateway.events.envelope import CloudEvent, make_event
from gateway.publisher import HEADERS, KafkaPublisher, producer_options
from gateway.reference import reference_for
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings

BODY = (
    "Bonjour, j'ai demandé le renouvellement de ma carte d'assurance maladie il y a trois mois. "
    * 20
)  # ~2 KB, a typical complaint text


def payload(n: int) -> ComplaintReceived:
    key = f"bench:{n}"
    return ComplaintReceived(
        reference=reference_for(key),
        channel=Channel.WEBFORM,
        received_at=datetime.now(UTC),
        kind=Kind.COMPLAINT,
        language="fr",
        body=BODY,
        complainant=Person(name="Marie Tremblay", email="marie@example.org"),
        source_message=SourceMessage(id=key),
    )


async def timed(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> RunFigures:
    """Run the calls from ``concurrency`` workers; latency per call, rate overall."""
    latencies: list[float] = []
    pending = iter(calls)

    async def worker() -> None:
        for call in pending:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return figures(latencies, time.perf_counter() - started)


def built_events(events: int, tag: str) -> list[CloudEvent[Any]]:
    return [make_event(payload(n), source_key=f"{tag}{n}") for n in range(events)]


async def bare_bytes_run(settings: KafkaSettings, events: int, concurrency: int) -> RunFigures:
    """Floor: aiokafka handed ready bytes (no serialisation at all)."""
    values = [(e.subject.encode(), e.model_dump_json().encode()) for e in built_events(events, "b")]
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        return await timed(
            [
                lambda k=k, v=v: producer.send_and_wait(
                    topics.COMPLAINTS, value=v, key=k, headers=HEADERS
                )
                for k, v in values
            ],
            concurrency,
        )
    finally:
        await producer.stop()


async def bare_run(settings: KafkaSettings, events: int, concurrency: int) -> RunFigures:
    """Baseline: aiokafka handed the same events, serialised to JSON in the send loop."""
    built = built_events(events, "s")
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        return await timed(
            [
                lambda e=e: producer.send_and_wait(
                    topics.COMPLAINTS,
                    value=e.model_dump_json().encode(),
                    key=e.subject.encode(),
                    headers=HEADERS,
                )
                for e in built
            ],
            concurrency,
        )
    finally:
        await producer.stop()


async def gateway_run(settings: KafkaSettings, events: int, concurrency: int) -> RunFigures:
    built = built_events(events, "g")
    async with KafkaPublisher(settings) as publisher:
        return await timed([lambda e=e: publisher.publish(e) for e in built], concurrency)


async def measure(bootstrap: str, events: int, concurrency: int, runs: int) -> dict[str, Any]:
    settings = KafkaSettings(bootstrap=bootstrap, max_in_flight=concurrency)
    await create_topics(settings)
    await bare_run(settings, min(events, 2000), concurrency)  # warm-up: connections, caches
    sides = {"bytes": bare_bytes_run, "bare": bare_run, "gateway": gateway_run}
    measured: dict[str, list[RunFigures]] = {name: [] for name in sides}
    for run in range(runs):  # rotate the order, so drift on a shared machine hits every side
        names = list(sides)[run % 3 :] + list(sides)[: run % 3]
        for name in names:
            measured[name].append(await sides[name](settings, events, concurrency))
    return {name: median_figures(figures) for name, figures in measured.items()}


def table(result: dict[str, Any], events: int, concurrency: int, runs: int) -> str:
    bare = result["bare"]
    labels = {
        "bare": "bare aiokafka, same events serialised in the loop (**baseline**)",
        "bytes": "bare aiokafka, ready bytes (floor: no serialisation)",
        "gateway": "gateway `KafkaPublisher.publish(event)`",
    }
    rows = [
        "| producer | events/s | p50 ms | p99 ms | ratio to baseline |",
        "| --- | ---: | ---: | ---: | ---: |",
    ] + [
        f"| {labels[name]} | {result[name].rate:,.0f} | {result[name].p50_ms:.1f} | "
        f"{result[name].p99_ms:.1f} | {result[name].rate / bare.rate:.2f} |"
        for name in ("bare", "bytes", "gateway")
    ]
    return (
        "## Publisher (`bench/publish.py`)\n\n"
        f"{events:,} `complaint.received` events of ~2 KB, {concurrency} awaiting acknowledgement "
        f"at once, acks=all, idempotent producer; median of {runs} runs in rotated order on a "
        "fresh local broker. Target: the gateway at >= 0.8 of the baseline.\n\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bootstrap", help="use this broker instead of a fresh local one")
    args = parser.parse_args()
    if args.bootstrap:
        result = run_loop(measure(args.bootstrap, args.events, args.concurrency, args.runs))
    else:
        with private_broker() as bootstrap:
            result = run_loop(measure(bootstrap, args.events, args.concurrency, args.runs))
    text = table(result, args.events, args.concurrency, args.runs)
    print(text)
    write_section("publish", text)


if __name__ == "__main__":
    main()
