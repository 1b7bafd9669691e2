"""Web-form webhook: accepted submissions/s and latency at fixed offered rates, vs a bare aiokafka
producer publishing the same events at the same rates, in the same run.

    python -m bench.webhook [--duration 6] [--rates 50,100,150,200,400,800] [--runs 3]

The gateway runs as in production (``intake-gateway run --only http``, uvicorn) on a fresh local
broker. The load generator is open-loop: requests are scheduled at the offered rate and latency
is measured from the scheduled time (no coordinated omission), over keep-alive HTTP/1.1
connections written by hand (an HTTP client library would cost more CPU than the server on this
2-core machine). Each request is a signed JSON submission with its own Idempotency-Key.
The baseline sends the same complaint.received events with aiokafka (acks=all, idempotent), at
the same offered rates. Peak RSS is the gateway process's VmHWM.
Targets: >= 1,500 accepted/s at saturation, p99 <= 100 ms at 1,000/s, ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.common import RunFigures, figures, median_figures, private_broker, write_section
from bench.publish import built_events
from gateway.admin import create_topics
from gateway.events import topics
from gateway.publisher import HEADERS, producer_options
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

    async def post(self, key: str) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        assert self._reader is not None
        head = (
            f"POST /v1/webhooks/forms/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
            f"X-Gateway-Signature: {self._signature}\r\nIdempotency-Key: {key}\r\n\r\n"
        )
        self._writer.write(head.encode() + BODY)
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
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(
    rates: list[float], duration: float, runs: int
) -> tuple[dict[str, dict[float, RunFigures]], float]:
    gateway: dict[float, list[RunFigures]] = {rate: [] for rate in rates}
    bare: dict[float, list[RunFigures]] = {rate: [] for rate in rates}
    with private_broker() as bootstrap, tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(create_topics(KafkaSettings(bootstrap=bootstrap)))
        with gateway_process(
            bootstrap,
            Path(data_dir),
            GATEWAY_WEBHOOK_SECRETS=json.dumps({"bench": SECRET}),
            GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE="100000000",
            GATEWAY_HTTP_RATE_PER_FORM_PER_MINUTE="100000000",
        ) as (url, pid):
            port = int(url.rsplit(":", 1)[1])
            asyncio.run(gateway_runs(port, [200.0], 3, "warm-up"))
            for run in range(runs):
                for figures_by_rate, side in (
                    (
                        gateway,
                        lambda r, run=run: asyncio.run(gateway_runs(port, r, duration, f"g{run}")),
                    ),
                    (bare, lambda r: asyncio.run(bare_runs(bootstrap, r, duration))),
                )[:: 1 if run % 2 == 0 else -1]:
                    for rate, (result, failures) in side(rates).items():
                        if failures:
                            print(f"  {failures} refused at {rate:.0f}/s", file=sys.stderr)
                        figures_by_rate[rate].append(result)
            rss = peak_rss_mb(pid)
    return (
        {
            "gateway": {rate: median_figures(v) for rate, v in gateway.items()},
            "bare": {rate: median_figures(v) for rate, v in bare.items()},
        },
        rss,
    )


def table(
    result: dict[str, dict[float, RunFigures]], rss: float, duration: float, runs: int
) -> str:
    rows = [
        "| offered/s | gateway accepted/s | p50 ms | p99 ms "
        "| bare aiokafka/s | p50 ms | p99 ms | ratio |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rate, g in result["gateway"].items():
        b = result["bare"][rate]
        rows.append(
            f"| {rate:,.0f} | {g.rate:,.0f} | {g.p50_ms:.1f} | {g.p99_ms:.1f} | {b.rate:,.0f} | "
            f"{b.p50_ms:.1f} | {b.p99_ms:.1f} | {g.rate / b.rate:.2f} |"
        )
    return (
        "## Web-form webhook (`bench/webhook.py`)\n\n"
        f"Signed JSON submissions (~1.5 KB) offered open-loop at fixed rates for {duration:.0f} s "
        f"each over {CONNECTIONS} keep-alive connections to `intake-gateway run --only http` "
        "(one uvicorn process, 202 only after Kafka's ack), against a bare aiokafka producer "
        "sending the same events at the same rates; load generator, gateway and broker share the "
        f"machine's 2 cores. Median of {runs} runs. Gateway peak RSS: {rss:.0f} MB. Targets: "
        ">= 1,500 accepted/s, p99 <= 100 ms at 1,000/s, ratio >= 0.5.\n\n" + "\n".join(rows)
    )


CHART = Path(__file__).resolve().parents[1] / "docs" / "webhook-latency.png"


def chart(result: dict[str, dict[float, RunFigures]], path: Path = CHART) -> None:
    """p50 and p99 latency against offered load, gateway and bare producer (PNG, matplotlib)."""
    import matplotlib  # noqa: PLC0415 (only this function draws)

    matplotlib.use("Agg")  # no display on a server
    from matplotlib import pyplot  # noqa: PLC0415

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=110)
    for side, label, colour in (
        ("gateway", "gateway", "tab:blue"),
        ("bare", "bare aiokafka", "grey"),
    ):
        rates = sorted(result[side])
        for field, style in (("p50_ms", "-"), ("p99_ms", "--")):
            values = [getattr(result[side][rate], field) for rate in rates]
            name = f"{label} {field.removesuffix('_ms')}"
            axes.plot(rates, values, style, marker="o", color=colour, label=name)
    axes.set_yscale("log")
    axes.set_xlabel("offered submissions per second (open loop)")
    axes.set_ylabel("latency, ms (log scale)")
    axes.set_title("Web-form webhook: latency against offered load (median of runs)")
    axes.axhline(100, color="tab:red", linewidth=0.8, linestyle=":", label="target p99 at 1,000/s")
    axes.grid(visible=True, which="both", linewidth=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rates", default="50,100,150,200,400,800")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",")]
    result, rss = measure(rates, args.duration, args.runs)
    chart(result)
    text = table(result, rss, args.duration, args.runs)
    text += f"\n\n![Latency against offered load]({CHART.name})\n"
    print(text)
    write_section("webhook", text)


if __name__ == "__main__":
    main()
