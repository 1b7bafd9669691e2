"""Notifier throughput: acknowledgements per second from Kafka to an SMTP server, vs aiosmtplib
sending the same messages directly, in the same run.

    python -m bench.notifier [--complaints 2000] [--runs 3]

An SMTP sink (aiosmtpd) runs in its own process and counts what it accepts. The baseline sends
the acknowledgements, already rendered, over as many kept-open aiosmtplib connections as the
notifier uses (``GATEWAY_SMTP_CONNECTIONS``, 4). The gateway side is the whole notifier: read
the complaints from Kafka, plan, render (Jinja2, FR), record in the ledger, send, publish
``notification.requested`` and ``notification.sent``, commit. Target: >= 300/s and >= 0.6 of
the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib

from bench.common import private_broker, write_section
from gateway.admin import create_topics
from gateway.components import Components
from gateway.notifier import OutgoingMessage
from gateway.notifier.assembly import notifier_service
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.planner import PlannedNotification, plan_acknowledgement
from gateway.notifier.smtp import compose
from gateway.notifier.templates import TemplateLibrary
from gateway.notifier.tokens import EmailTokens
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.kafka import free_port
from tests.support.notifier import complaint_event, start_group_at_end

SENDER = "plaintes@ramq.example"


def _serve_sink(port: int, counter: Synchronized[int], ready: Any) -> None:
    from aiosmtpd.controller import Controller  # noqa: PLC0415 (in the child process)

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[int, Synchronized[int]]]:
    context = multiprocessing.get_context("spawn")
    counter: Synchronized[int] = context.Value("q", 0)  # type: ignore[assignment]
    ready = context.Event()
    port = free_port()
    process = context.Process(target=_serve_sink, args=(port, counter, ready), daemon=True)
    process.start()
    ready.wait(30)
    try:
        yield port, counter
    finally:
        process.kill()
        process.join()


async def wait_count(counter: Synchronized[int], target: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while counter.value < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{counter.value} of {target} arrived")
        await asyncio.sleep(0.01)


def rendered(settings: GatewaySettings, count: int) -> list[bytes]:
    """The same acknowledgements the notifier would send, composed ahead (baseline input)."""
    dispatcher = Dispatcher(
        settings,
        {},
        None,
        None,
        TemplateLibrary(),
        EmailTokens(EmailTokens.new_key()),  # type: ignore[arg-type]
    )
    messages = []
    for _ in range(count):
        plan = plan_acknowledgement(complaint_event(), datetime.now(UTC), timedelta(days=14))
        assert isinstance(plan, PlannedNotification)
        outgoing = OutgoingMessage(
            plan.notification_id, plan.reference, plan.recipient, dispatcher.render(plan)
        )
        messages.append(compose(outgoing, SENDER))
    return messages


async def baseline_run(
    settings: GatewaySettings, port: int, counter: Synchronized[int], count: int
) -> float:
    messages = rendered(settings, count)
    start_count = counter.value
    pending = iter(messages)

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for message in pending:
            await client.sendmail(SENDER, ["marie@example.org"], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(settings.smtp.connections)))
    await wait_count(counter, start_count + count)
    return count / (time.perf_counter() - started)


async def gateway_run(
    settings: GatewaySettings, counter: Synchronized[int], count: int, data_dir: Path
) -> float:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(settings.kafka.bootstrap, group)
    run_settings = settings.model_copy(
        update={
            "data_dir": data_dir,
            "notifier": settings.notifier.model_copy(update={"group_id": group}),
        }
    )
    async with KafkaPublisher(settings.kafka) as publisher:
        await asyncio.gather(*(publisher.publish(complaint_event()) for _ in range(count)))
        components = Components.build(run_settings, publisher)
        start_count = counter.value
        started = time.perf_counter()
        task = asyncio.create_task(notifier_service(components).run())
        try:
            await wait_count(counter, start_count + count)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            components.close()
    return count / elapsed


async def measure(
    bootstrap: str,
    port: int,
    counter: Synchronized[int],
    count: int,
    runs: int,
    notifier: dict[str, int],
) -> dict[str, float]:
    kafka = KafkaSettings(bootstrap=bootstrap)
    await create_topics(kafka)
    with tempfile.TemporaryDirectory() as scratch:
        settings = GatewaySettings.model_validate(
            {
                "kafka": kafka,
                "data_dir": scratch,
                "public_url": "https://plaintes.example.org",
                "smtp": {"host": "127.0.0.1", "port": port, "from": SENDER},
                "notifier": notifier,
            }
        )
        await baseline_run(settings, port, counter, min(count, 200))  # warm-up
        rates: dict[str, list[float]] = {"baseline": [], "gateway": []}
        for run in range(runs):
            order = ["baseline", "gateway"] if run % 2 == 0 else ["gateway", "baseline"]
            for side in order:
                if side == "baseline":
                    rates[side].append(await baseline_run(settings, port, counter, count))
                else:
                    data_dir = Path(scratch) / f"run-{run}"
                    rates[side].append(await gateway_run(settings, counter, count, data_dir))
    return {side: statistics.median(values) for side, values in rates.items()}


def table(result: dict[str, float], count: int, runs: int) -> str:
    baseline = result["baseline"]
    rows = [
        "| sender | acknowledgements/s | ratio to baseline |",
        "| --- | ---: | ---: |",
        "| aiosmtplib, same messages composed ahead, 4 connections (**baseline**) | "
        f"{baseline:,.0f} | 1.00 |",
        f"| notifier: Kafka -> plan -> render -> ledger -> SMTP -> events -> commit | "
        f"{result['gateway']:,.0f} | {result['gateway'] / baseline:.2f} |",
    ]
    return (
        "## Notifier (`bench/notifier.py`)\n\n"
        f"{count:,} acknowledgements (French, text + HTML, with a validation link) to an aiosmtpd "
        f"sink in its own process; median of {runs} runs in alternating order on a fresh local "
        "broker. Target: >= 300/s and >= 0.6 of the baseline.\n\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="GATEWAY_NOTIFIER_CONCURRENCY")
    parser.add_argument("--batch", type=int, default=100, help="GATEWAY_NOTIFIER_BATCH_SIZE")
    args = parser.parse_args()
    notifier = {"concurrency": args.concurrency, "batch_size": args.batch}
    with smtp_sink() as (port, counter), private_broker() as bootstrap:
        result = asyncio.run(
            measure(bootstrap, port, counter, args.complaints, args.runs, notifier)
        )
    text = table(result, args.complaints, args.runs)
    print(text)
    write_section("notifier", text)


if __name__ == "__main__":
    main()
