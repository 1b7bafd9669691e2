"""Web-form webhook: accepted submissions/s and latency at fixed offered rates, vs a bare aiokafka
producer publishing the same events at the same rates, in the same run.

    python -m bench.webhook [--duration 6] [--rates 100,...,1500] [--runs 3] [--workers 1,2]
        [--backends embedded,shared,two-replicas] [--backend-rates 300]

The gateway runs as in production (``intake-gateway run --only http``, uvicorn on uvloop), with
each number of HTTP worker processes asked for, on a fresh local broker. The load generator is
open-loop: requests are scheduled at the offered rate and latency is measured from the
scheduled time (no coordinated omission), over keep-alive HTTP/1.1
connections written by hand (an HTTP client library would cost more CPU than the server on this
2-core machine). Each request is a signed JSON submission with its own Idempotency-Key.
The baseline sends the same complaint.received events with aiokafka (acks=all, idempotent), at
the same offered rates. Peak RSS is the sum of the gateway processes' VmHWM.
Targets: >= 1,500 accepted/s at saturation, p99 <= 100 ms at 1,000/s, ratio >= 0.5.

``--backends`` then compares storage backends in the same run (``bench/webhook_backends.py``):
SQLite + files, PostgreSQL + S3, two replicas on them (``--workers ''`` runs only that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.common import (
    RunFigures,
    descendants,
    figures,
    median_figures,
    memory_mb,
    private_broker,
    write_section,
)
from bench.publish import built_events
from gateway.admin import create_topics
from gateway.events import topics
from gateway.publisher import HEADERS, producer_options
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.support.http import gateway_process

SECRET = "bench-secret"  # noqa: S105 (a test secret on loopback)
CONNECTIONS = 64
BODY = json.dumps(
    {
        "name": "Marie Tremblay",
        "email": "marie.tremblay@example.org",
        "phone": "514 555 0123",
        "kind": "complaint",
        "body": "Bonjour, j'ai demandé le renouvellement de ma carte d'assurance maladie il y a "
        "trois mois et je ne l'ai toujours pas reçue malgré plusieurs appels. " * 8,
    }
).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection sending the signed submission."""

    def __init__(self, port: int, signature: str) -> None:
        self._port, self._signature = port, signature
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, key: str, body: bytes = BODY, signature: str | None = None) -> int:
        """POST ``body`` (the repeated one unless given, with its own ``signature``)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        assert self._reader is not None
        head = (
            f"POST /v1/webhooks/forms/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Gateway-Signature: {signature or self._signature}\r\n"
            f"Idempotency-Key: {key}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        status_line = await self._reader.readuntil(b"\r\n")
        headers = await self._reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await self._reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def open_loop(
    send: Callable[[int], Awaitable[bool]], rate: float, duration: float, workers: int
) -> tuple[RunFigures, int]:
    """Offer ``rate`` requests/s for ``duration`` s; latency from each request's scheduled time.
    Only accepted requests (202) count in the rate and the latencies; the others are returned
    as failures (a fast 503 must not look like a fast acceptance)."""
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    slots: asyncio.Queue[int] = asyncio.Queue()
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while True:
            n = await slots.get()
            scheduled = start + n / rate
            ok = await send(n)
            if ok:
                latencies.append(time.perf_counter() - scheduled)
            failures += not ok
            slots.task_done()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        slots.put_nowait(n)
    await slots.join()
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    return figures(latencies, elapsed), failures


async def gateway_runs(
    port: int, rates: list[float], duration: float, tag: str
) -> dict[float, tuple[RunFigures, int]]:
    signature = sign(BODY, SECRET)
    pool = [Connection(port, signature) for _ in range(CONNECTIONS)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)

    async def send(n: int) -> bool:
        connection = await free.get()
        try:
            return await connection.post(f"{tag}-{time.time_ns()}-{n}") == 202
        finally:
            free.put_nowait(connection)

    results = {rate: await open_loop(send, rate, duration, CONNECTIONS) for rate in rates}
    for connection in pool:
        connection.close()
    return results


async def bare_runs(
    bootstrap: str, rates: list[float], duration: float
) -> dict[float, tuple[RunFigures, int]]:
    producer = AIOKafkaProducer(**producer_options(KafkaSettings(bootstrap=bootstrap)))
    await producer.start()
    events = built_events(int(max(rates) * duration) + 1, f"bare-{time.time_ns()}")
    values = [(e.subject.encode(), e.model_dump_json().encode()) for e in events]

    async def send(n: int) -> bool:
        key, value = values[n]
        await producer.send_and_wait(topics.COMPLAINTS, value=value, key=key, headers=HEADERS)
        return True

    try:
        return {rate: await open_loop(send, rate, duration, CONNECTIONS) for rate in rates}
    finally:
        await producer.stop()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process and of every process under it (the HTTP workers and their zygote).
    Pages shared by forked workers count in each: see ``bench/memory.py`` for PSS."""
    return memory_mb(descendants(pid), "VmHWM")


def wait_for_workers(log: Path, workers: int, timeout_s: float = 60.0) -> None:
    """Until every HTTP worker logged its start (the main process answers first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"event": "gateway.started"') >= workers:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{workers} HTTP workers did not start in {timeout_s} s")


Series = dict[float, RunFigures]


def measure(
    rates: list[float], duration: float, runs: int, worker_counts: list[int]
) -> tuple[dict[str, Series], dict[int, float]]:
    """Median figures by side ("bare", or a worker count) and rate; peak RSS by worker count."""
    results: dict[str, dict[float, list[RunFigures]]] = {"bare": {rate: [] for rate in rates}}
    rss: dict[int, float] = {}
    with private_broker() as bootstrap:
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        for workers in worker_counts:
            side = results.setdefault(str(workers), {rate: [] for rate in rates})
            rss[workers] = gateway_series(bootstrap, workers, rates, duration, runs, side)
        for _ in range(runs):
            for rate, (result, failures) in run_loop(bare_runs(bootstrap, rates, duration)).items():
                report_failures(failures, rate)
                results["bare"][rate].append(result)
    medians = {
        name: {rate: median_figures(figures) for rate, figures in series.items()}
        for name, series in results.items()
    }
    return medians, rss


# The benchmarks' form ("bench", signed with SECRET) and no rate limit in the way.
BENCH_FORM = {
    "GATEWAY_WEBHOOK_SECRETS": json.dumps({"bench": SECRET}),
    "GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE": "100000000",
    "GATEWAY_HTTP_RATE_PER_FORM_PER_MINUTE": "100000000",
}


@contextlib.contextmanager
def served(bootstrap: str, workers: int, **settings: str) -> Iterator[tuple[int, int]]:
    """``intake-gateway run --only http`` with ``workers`` HTTP processes on a fresh data
    folder, the bench form configured; (its port, its process id) once every worker serves."""
    with tempfile.TemporaryDirectory() as data_dir:
        log = Path(data_dir) / "gateway.log"
        with gateway_process(
            bootstrap,
            Path(data_dir) / "data",
            log=log,
            GATEWAY_HTTP_WORKERS=str(workers),
            **BENCH_FORM,
            **settings,
        ) as (url, pid):
            wait_for_workers(log, workers)
            yield int(url.rsplit(":", 1)[1]), pid


def gateway_series(
    bootstrap: str,
    workers: int,
    rates: list[float],
    duration: float,
    runs: int,
    into: dict[float, list[RunFigures]],
) -> float:
    """Runs of ``intake-gateway run --only http`` with ``workers`` processes; its peak RSS."""
    with served(bootstrap, workers) as (port, pid):
        run_loop(gateway_runs(port, [200.0], 3, f"warm-up-{workers}"))
        for run in range(runs):
            tag = f"w{workers}-{run}"
            for rate, (result, failures) in run_loop(
                gateway_runs(port, rates, duration, tag)
            ).items():
                report_failures(failures, rate)
                into[rate].append(result)
        return peak_rss_mb(pid)


def report_failures(failures: int, rate: float) -> None:
    if failures:
        print(f"  {failures} refused at {rate:.0f}/s", file=sys.stderr)


def table(result: dict[str, Series], rss: dict[int, float], duration: float, runs: int) -> str:
    counts = sorted(int(name) for name in result if name != "bare")
    best = str(counts[-1])
    head = "| offered/s |"
    for count in counts:
        head += f" {count} worker{'s' if count > 1 else ''}: accepted/s | p50 ms | p99 ms |"
    rows = [
        head + " bare aiokafka/s | p50 ms | p99 ms | ratio |",
        "| ---: |" + " ---: | ---: | ---: |" * (len(counts) + 1) + " ---: |",
    ]
    for rate, bare in result["bare"].items():
        cells = [f"{rate:,.0f}"]
        for count in counts:
            g = result[str(count)][rate]
            cells += [f"{g.rate:,.0f}", f"{g.p50_ms:.1f}", f"{g.p99_ms:.1f}"]
        cells += [f"{bare.rate:,.0f}", f"{bare.p50_ms:.1f}", f"{bare.p99_ms:.1f}"]
        cells.append(f"{result[best][rate].rate / bare.rate:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    memory = ", ".join(f"{count} worker(s) {rss[count]:.0f} MB" for count in counts)
    return (
        "## Web-form webhook (`bench/webhook.py`)\n\n"
        f"Signed JSON submissions (~1.5 KB) offered open-loop at fixed rates for {duration:.0f} s "
        f"each over {CONNECTIONS} keep-alive connections to `intake-gateway run --only http` "
        "(uvicorn on uvloop, 202 only after Kafka's ack) with `GATEWAY_HTTP_WORKERS` processes, "
        "against a bare aiokafka producer sending the same events at the same rates; load "
        "generator, gateway and broker share the machine's 2 cores. The ratio is the most "
        f"workers' rate over the bare producer's. Median of {runs} runs. Peak RSS of the "
        f"gateway (all its processes): {memory}. Targets: >= 1,500 accepted/s, p99 <= 100 ms "
        "at 1,000/s, ratio >= 0.5.\n\n" + "\n".join(rows)
    )


CHART = Path(__file__).resolve().parents[1] / "docs" / "webhook-latency.png"


def chart(result: dict[str, Series], path: Path = CHART) -> None:
    """p50 and p99 latency against offered load, per worker count and bare producer (PNG)."""
    import matplotlib  # noqa: PLC0415 (only this function draws)

    matplotlib.use("Agg")  # no display on a server
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=110)
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple"])
    for side, series in result.items():
        label = "bare aiokafka" if side == "bare" else f"gateway, {side} worker(s)"
        colour = "grey" if side == "bare" else next(colours)
        rates = sorted(series)
        for field, style in (("p50_ms", "-"), ("p99_ms", "--")):
            values = [getattr(series[rate], field) for rate in rates]
            name = f"{label} {field.removesuffix('_ms')}"
            axes.plot(rates, values, style, marker="o", color=colour, label=name)
    axes.set_yscale("log")
    axes.set_xlabel("offered submissions per second (open loop)")
    axes.set_ylabel("latency, ms (log scale)")
    axes.set_title("Web-form webhook: latency against offered load (median of runs)")
    axes.axhline(100, color="tab:red", linewidth=0.8, linestyle=":", label="target p99 at 1,000/s")
    axes.grid(visible=True, which="both", linewidth=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rates", default="100,200,400,600,800,1000,1500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="GATEWAY_HTTP_WORKERS values to run")
    parser.add_argument(
        "--backends",
        default="embedded,shared,two-replicas",
        help="sides of the backends comparison ('' for none): embedded, shared, two-replicas, "
        "shared-fsync (PostgreSQL with fsync on), postgres-files, sqlite-s3",
    )
    parser.add_argument("--backend-rates", default="300", help="offered rates of that comparison")
    parser.add_argument(
        "--profile", type=Path, help="py-spy (on PATH) samples each side's saturation into here"
    )
    parser.add_argument(
        "--encryption",
        action="store_true",
        help="also encryption at rest on and off, same run (--rates are its open-loop rates)",
    )
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    counts = [int(count) for count in args.workers.split(",") if count]
    if counts:
        result, rss = measure(rates, args.duration, args.runs, counts)
        chart(result)
        text = table(result, rss, args.duration, args.runs)
        text += f"\n\n![Latency against offered load]({CHART.name})\n"
        print(text)
        write_section("webhook", text)
    if args.encryption:
        from bench import encryption  # noqa: PLC0415 (it imports this module)

        text = encryption.webhook(rates, args.duration, args.runs)
        print(text)
        write_section("webhook-encryption", text)
    if sides := [side for side in args.backends.split(",") if side]:
        backend_rates = [float(rate) for rate in args.backend_rates.split(",")]
        compare_backends(sides, backend_rates, args.duration, args.runs, args.profile)


def compare_backends(
    sides: list[str], rates: list[float], duration: float, runs: int, profile: Path | None
) -> None:
    """The same submissions on each backend, same run (``bench/webhook_backends.py``)."""
    from bench import webhook_backends  # noqa: PLC0415 (it imports this module)

    unknown = set(sides) - set(webhook_backends.SIDES)
    if unknown:
        raise SystemExit(f"unknown --backends: {', '.join(sorted(unknown))}")
    results, load = webhook_backends.measure(sides, rates, duration, runs, profile)
    text = webhook_backends.table(results, duration, runs, load)
    print(text)
    print(webhook_backends.top_statements(results))
    write_section("webhook-backends", text)


if __name__ == "__main__":
    main()
