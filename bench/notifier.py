"""Notifier throughput: acknowledgements per second from Kafka to an SMTP server, vs aiosmtplib
sending the same messages directly, in the same run.

    python -m bench.notifier [--complaints 2000] [--runs 3] [--ledgers sqlite,postgres]

An SMTP sink (aiosmtpd) runs in its own process and counts what it accepts. The baseline sends
the acknowledgements, already rendered, over as many kept-open aiosmtplib connections as the
notifier uses (``GATEWAY_SMTP_CONNECTIONS``, 4). The gateway side is the whole notifier: read
the complaints from Kafka, plan, render (Jinja2, FR), record in the ledger, send, publish
``notification.requested`` and ``notification.sent``, commit. Target: >= 300/s and >= 0.6 of
the baseline. With ``postgres`` in ``--ledgers`` the notifier runs a second time in each run with
its ledger and claims in PostgreSQL (``GATEWAY_STATE_URL``: the test suite's server, fsync off),
a fresh database each run as SQLite gets a fresh data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import queue
import re
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import aiosmtplib
from pydantic import SecretStr

from bench.backends import SharedState, shared_state
from bench.common import percentile, private_broker, write_section
from gateway.admin import create_topics
from gateway.components import Components
from gateway.logs import configure_logging
from gateway.notifier import OutgoingMessage
from gateway.notifier.assembly import notifier_service
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.planner import PlannedNotification, plan_acknowledgement
from gateway.notifier.smtp import compose
from gateway.notifier.templates import TemplateLibrary
from gateway.notifier.tokens import EmailTokens
from gateway.publisher import KafkaPublisher
from gateway.runtime import run_loop
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.kafka import free_port
from tests.support.notifier import complaint_event, start_group_at_end

SENDER = "plaintes@ramq.example"


_REFERENCE_IN_ID = re.compile(rb"^Message-ID: <([A-Z0-9-]+)\.", re.MULTILINE | re.IGNORECASE)


def _serve_sink(port: int, counter: Synchronized[int], ready: Any, arrivals: Any) -> None:
    from aiosmtpd.controller import Controller  # noqa: PLC0415 (in the child process)

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            with counter.get_lock():
                counter.value += 1
            found = _REFERENCE_IN_ID.search(envelope.content)
            if found:  # the reference, and when its mail arrived
                arrivals.put((found.group(1).decode(), time.time()))
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


@dataclass
class Sink:
    port: int
    counter: Synchronized[int]
    arrivals: Any  # multiprocessing queue of (reference, arrival time)

    def arrival_times(self, references: set[str], timeout_s: float = 120) -> dict[str, float]:
        """When each of ``references`` reached the server (others are dropped)."""
        found: dict[str, float] = {}
        deadline = time.monotonic() + timeout_s
        while set(found) != references and time.monotonic() < deadline:
            try:
                reference, at = self.arrivals.get(timeout=1)
            except queue.Empty:
                continue
            if reference in references:
                found.setdefault(reference, at)  # the first mail of a complaint
        return found

    def forget(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.arrivals.get_nowait()


@contextlib.contextmanager
def smtp_sink() -> Iterator[Sink]:
    context = multiprocessing.get_context("spawn")
    counter: Synchronized[int] = context.Value("q", 0)  # type: ignore[assignment]
    ready = context.Event()
    arrivals = context.Queue()
    port = free_port()
    process = context.Process(
        target=_serve_sink, args=(port, counter, ready, arrivals), daemon=True
    )
    process.start()
    ready.wait(30)
    try:
        yield Sink(port, counter, arrivals)
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


def process_cpu_s() -> float:
    """User + system time of this process so far (the sink runs in its own)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def baseline_run(
    settings: GatewaySettings,
    port: int,
    counter: Synchronized[int],
    count: int,
    cpu_ms: list[float] | None = None,
) -> float:
    """Accepted/s; ``cpu_ms``: gets this process's CPU per message (the client's)."""
    messages = rendered(settings, count)
    start_count = counter.value
    pending = iter(messages)

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for message in pending:
            await client.sendmail(SENDER, ["marie@example.org"], message)
        await client.quit()

    started, cpu = time.perf_counter(), process_cpu_s()
    await asyncio.gather(*(connection() for _ in range(settings.smtp.connections)))
    await wait_count(counter, start_count + count)
    if cpu_ms is not None:
        cpu_ms.append((process_cpu_s() - cpu) / count * 1000)
    return count / (time.perf_counter() - started)


async def fresh_group(settings: GatewaySettings, data_dir: Path, prefix: str) -> GatewaySettings:
    """Settings of a notifier in a new consumer group, starting at the topics' end."""
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(settings.kafka.bootstrap, group)
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "notifier": settings.notifier.model_copy(update={"group_id": group}),
        }
    )


async def gateway_run(
    settings: GatewaySettings,
    counter: Synchronized[int],
    count: int,
    data_dir: Path,
    cpu_ms: list[float] | None = None,
) -> float:
    """Acknowledgements/s; ``cpu_ms``: gets this process's CPU per acknowledgement over the
    run (the complaints were published before it: the notifier's alone)."""
    run_settings = await fresh_group(settings, data_dir, "bench")
    async with KafkaPublisher(settings.kafka) as publisher:
        await asyncio.gather(*(publisher.publish(complaint_event()) for _ in range(count)))
        components = await Components.open(run_settings, publisher)
        start_count = counter.value
        started, cpu = time.perf_counter(), process_cpu_s()
        task = asyncio.create_task(notifier_service(components).run())
        try:
            await wait_count(counter, start_count + count)
            elapsed = time.perf_counter() - started
            if cpu_ms is not None:
                cpu_ms.append((process_cpu_s() - cpu) / count * 1000)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await components.close()
    return count / elapsed


async def paced_baseline(
    settings: GatewaySettings, sink: Sink, count: int, rate: float
) -> list[float]:
    """aiosmtplib sending the composed messages at ``rate``: seconds from send to the server."""
    messages = rendered(settings, count)
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port) for _ in range(4)]
    for smtp in clients:
        await smtp.connect()
    sent: dict[str, float] = {}

    async def send(number: int, message: bytes) -> None:
        found = _REFERENCE_IN_ID.search(message)
        assert found is not None
        sent[found.group(1).decode()] = time.time()
        await clients[number % len(clients)].sendmail(SENDER, ["marie@example.org"], message)

    sink.forget()
    tasks = []
    started = time.perf_counter()
    for number, message in enumerate(messages):
        await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(send(number, message)))
    await asyncio.gather(*tasks)
    for smtp in clients:
        await smtp.quit()
    arrived = await asyncio.to_thread(sink.arrival_times, set(sent))
    return [arrived[reference] - sent[reference] for reference in arrived]


async def paced_gateway(
    settings: GatewaySettings, sink: Sink, count: int, rate: float, data_dir: Path
) -> list[float]:
    """Complaints published at ``rate`` while the notifier runs: seconds from a complaint's
    acknowledgement by Kafka to its mail at the server."""
    run_settings = await fresh_group(settings, data_dir, "bench-paced")
    published: dict[str, float] = {}
    async with KafkaPublisher(settings.kafka) as publisher:
        components = await Components.open(run_settings, publisher)
        task = asyncio.create_task(notifier_service(components).run())
        await asyncio.sleep(3)  # joined its group
        sink.forget()

        async def publish_one() -> None:
            event = complaint_event()
            await publisher.publish(event)
            published[event.subject] = time.time()

        publishing = []
        started = time.perf_counter()
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            publishing.append(asyncio.create_task(publish_one()))
        await asyncio.gather(*publishing)
        try:
            arrived = await asyncio.to_thread(sink.arrival_times, set(published))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await components.close()
    return [arrived[reference] - published[reference] for reference in arrived]


async def measure(
    bootstrap: str,
    sink: Sink,
    count: int,
    runs: int,
    notifier: dict[str, int],
    paced: tuple[int, float],
    postgres: SharedState | None = None,
) -> dict[str, float]:
    port, counter = sink.port, sink.counter
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
        # warm-up of both sides: a fresh broker's JVM compiles its produce and fetch paths
        # during the first thousands of events (measured: its CPU per acknowledgement fell from
        # 0.8 to 0.3 ms over four runs), which a broker in service has long done
        await baseline_run(settings, port, counter, min(count, 200))
        await gateway_run(settings, counter, count, Path(scratch) / "warm-up")
        if postgres is not None:
            await gateway_run(on(postgres, settings, "warm"), counter, count, Path(scratch) / "w")
        sides = ["baseline", "gateway"] + (["postgres"] if postgres else [])
        rates: dict[str, list[float]] = {side: [] for side in sides}
        cpu: dict[str, list[float]] = {side: [] for side in sides}
        for run in range(runs):
            for side in sides[run % len(sides) :] + sides[: run % len(sides)]:
                if side == "baseline":
                    rate = await baseline_run(settings, port, counter, count, cpu[side])
                    rates[side].append(rate)
                    continue
                data_dir = Path(scratch) / f"{side}-{run}"
                run_settings = on(postgres, settings, str(run)) if side == "postgres" else settings
                rate = await gateway_run(run_settings, counter, count, data_dir, cpu[side])
                rates[side].append(rate)
        latencies = {
            "baseline": await paced_baseline(settings, sink, *paced),
            "gateway": await paced_gateway(settings, sink, *paced, Path(scratch) / "paced"),
        }
        if postgres is not None:
            paced_settings = on(postgres, settings, "paced")
            paced_dir = Path(scratch) / "paced-postgres"
            latencies["postgres"] = await paced_gateway(paced_settings, sink, *paced, paced_dir)
    result = {side: statistics.median(values) for side, values in rates.items()}
    result |= {f"{side}_cpu_ms": statistics.median(values) for side, values in cpu.items()}
    if postgres is not None:
        ratios = [pg / lite for pg, lite in zip(rates["postgres"], rates["gateway"], strict=True)]
        result |= {"pg_ratio": statistics.median(ratios), "pg_min": min(ratios)}
        result["pg_max"] = max(ratios)
    for side, latencies_s in latencies.items():
        result[f"{side}_p50"] = percentile(latencies_s, 0.5) * 1000
        result[f"{side}_p99"] = percentile(latencies_s, 0.99) * 1000
        result[f"{side}_paced"] = len(latencies_s)
    return result


def on(postgres: SharedState | None, settings: GatewaySettings, name: str) -> GatewaySettings:
    """``settings`` with the state (ledger, claims) in a new database of ``postgres``."""
    assert postgres is not None
    url = postgres.server.create_database(f"notifier_{name}")
    return settings.model_copy(update={"state_url": SecretStr(url)})


def table(result: dict[str, float], count: int, runs: int, paced: tuple[int, float]) -> str:
    baseline = result["baseline"]
    rows = [
        "| sender | acknowledgements/s | p50 ms | p99 ms | ratio to baseline"
        " | CPU ms / message (this process) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        "| aiosmtplib, same messages composed ahead, 4 connections (**baseline**) | "
        f"{baseline:,.0f} | {result['baseline_p50']:.0f} | {result['baseline_p99']:.0f} | 1.00 "
        f"| {result['baseline_cpu_ms']:.2f} |",
        f"| notifier: Kafka -> plan -> render -> ledger -> SMTP -> events -> commit | "
        f"{result['gateway']:,.0f} | {result['gateway_p50']:.0f} | {result['gateway_p99']:.0f} | "
        f"{result['gateway'] / baseline:.2f} | {result['gateway_cpu_ms']:.2f} |",
    ]
    if "postgres" in result:
        rows.append(
            "| the same, ledger and claims in PostgreSQL (`GATEWAY_STATE_URL`) | "
            f"{result['postgres']:,.0f} | {result['postgres_p50']:.0f} | "
            f"{result['postgres_p99']:.0f} | {result['postgres'] / baseline:.2f} "
            f"| {result['postgres_cpu_ms']:.2f} |"
        )
    order = "rotated" if "postgres" in result else "alternating"
    return (
        "## Notifier (`bench/notifier.py`)\n\n"
        f"{count:,} acknowledgements (French, text + HTML, with a validation link) to an aiosmtpd "
        f"sink in its own process; rates: median of {runs} runs in {order} order on a fresh "
        f"local broker. Latency: {paced[0]} complaints offered at {paced[1]:.0f}/s, from the "
        "complaint acknowledged by Kafka (the notifier) or the send (aiosmtplib) to the mail at "
        "the SMTP server. CPU: user + system time of the benchmark's process over the rate "
        "runs, per message: the notifier's own (the complaints are published before; the sink "
        "runs in its own process), or the baseline's client. Targets: >= 300/s and >= 0.6 of "
        "the baseline; CPU <= 1.2 ms an acknowledgement (issue 29).\n\n"
        + "\n".join(rows)
        + postgres_note(result)
    )


def postgres_note(result: dict[str, float]) -> str:
    if "postgres" not in result:
        return ""
    return (
        "\n\nLedger in PostgreSQL (the test suite's server: `fsync` and `full_page_writes` off, "
        "a new database each run) against SQLite (the first notifier row; a new data dir each "
        "run), the three sides taken in turn and rotated run by run: PostgreSQL at "
        f"{result['pg_ratio']:.2f} of SQLite's rate (runs {result['pg_min']:.2f}-"
        f"{result['pg_max']:.2f})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="GATEWAY_NOTIFIER_CONCURRENCY")
    parser.add_argument("--batch", type=int, default=100, help="GATEWAY_NOTIFIER_BATCH_SIZE")
    parser.add_argument("--paced", type=int, default=300, help="complaints of the latency run")
    parser.add_argument("--paced-rate", type=float, default=100.0, help="... offered per second")
    parser.add_argument("--ledgers", default="sqlite,postgres", help="sqlite, and postgres too?")
    args = parser.parse_args()
    configure_logging()  # JSON lines, as in production (structlog's default renders for a console)
    notifier = {"concurrency": args.concurrency, "batch_size": args.batch}
    paced = (args.paced, args.paced_rate)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(smtp_sink())
        bootstrap = stack.enter_context(private_broker())
        postgres = stack.enter_context(shared_state()) if "postgres" in args.ledgers else None
        result = run_loop(
            measure(bootstrap, sink, args.complaints, args.runs, notifier, paced, postgres)
        )
    text = table(result, args.complaints, args.runs, paced)
    print(text)
    write_section("notifier", text)


if __name__ == "__main__":
    main()
