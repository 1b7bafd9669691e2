"""End to end: a web form submitted to its acknowledgement arriving at the SMTP server, at a
steady offered rate, against sending the same acknowledgement directly, in the same run.

    python -m bench.e2e [--rate 50] [--duration 20] [--runs 3]

One gateway process as it is run (``intake-gateway run --only http notifier``: one HTTP worker,
embedded stores, encryption at rest, the notifier with its ledger) on a fresh local broker, and
an SMTP sink (aiosmtpd) in a process of its own that notes when each reference's mail arrives.
Distinct signed submissions (``bench/submissions.py``, each from another person with an email
address) are posted open-loop at ``--rate``; each one's latency runs from its scheduled time
(no coordinated omission) to its 202, and to its acknowledgement at the sink. The baseline, in
the same run and at the same rate: the same number of messages sent straight to the sink over
one kept-open aiosmtplib connection (the floor a mail leg costs here). Targets (issue 29):
p50 <= 150 ms and p99 <= 400 ms from the form to the acknowledgement at 50 submissions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx

from bench.common import percentile, private_broker, write_section
from bench.notifier import Sink, smtp_sink
from bench.webhook import BENCH_FORM
from bench.webhook_backends import signed
from gateway.admin import create_topics
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings
from tests.support.http import GatewayProcess

FORM_URL = "/v1/webhooks/forms/bench"


@dataclass
class Legs:
    """Latencies (ms) of one run: to the 202, to the mail at the sink; and what went missing."""

    accepted_ms: list[float] = field(default_factory=list)
    mailed_ms: list[float] = field(default_factory=list)
    refused: int = 0
    unmailed: int = 0


@contextlib.contextmanager
def gateway(bootstrap: str, sink: Sink, scratch: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        bootstrap,
        scratch / "data",
        services=("http", "notifier"),
        log=scratch / "gateway.log",
        **BENCH_FORM,
        GATEWAY_SMTP_HOST="127.0.0.1",
        GATEWAY_SMTP_PORT=str(sink.port),
        GATEWAY_SMTP_FROM="plaintes@ramq.example",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def forms_run(url: str, sink: Sink, rate: float, duration: float, tag: str) -> Legs:
    """Submissions at ``rate`` for ``duration`` s; each one's 202 and its mail at the sink."""
    requests = signed(int(rate * duration), tag)
    legs, scheduled, references = Legs(), {}, set()
    sink.forget()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def post(number: int, at: float) -> None:
            body, signature = requests[number]
            headers = {
                "content-type": "application/json",
                "X-Gateway-Signature": signature,
                "Idempotency-Key": f"{tag}-{number}",
            }
            answer = await client.post(FORM_URL, content=body, headers=headers)
            if answer.status_code != 202:
                legs.refused += 1
                return
            legs.accepted_ms.append((time.time() - at) * 1000)
            reference = answer.json()["reference"]
            scheduled[reference] = at
            references.add(reference)

        start = time.time()
        posts = []
        for number in range(len(requests)):
            at = start + number / rate
            await asyncio.sleep(max(0.0, at - time.time()))
            posts.append(asyncio.create_task(post(number, at)))
        await asyncio.gather(*posts)
    arrived = await asyncio.to_thread(sink.arrival_times, references, 60)
    legs.mailed_ms = [(arrived[ref] - scheduled[ref]) * 1000 for ref in arrived]
    legs.unmailed = len(references) - len(arrived)
    return legs


async def direct_run(sink: Sink, rate: float, duration: float, tag: str) -> Legs:
    """The baseline: as many acknowledgements sent straight to the sink at ``rate``."""
    legs, scheduled = Legs(), {}
    sink.forget()
    count = int(rate * duration)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
    await smtp.connect()
    lock = asyncio.Lock()
    try:

        async def send(number: int, at: float) -> None:
            reference = f"PL-{tag[:4].upper()}-{number:04d}-BASE"
            message = EmailMessage()
            message["From"] = "plaintes@ramq.example"
            message["To"] = f"person{number}@example.org"
            message["Subject"] = f"Accusé de réception {reference}"
            message["Message-ID"] = f"<{reference}.ack@ramq.example>"
            message.set_content("Nous avons bien reçu votre plainte.")
            scheduled[reference] = at
            async with lock:  # one connection, one transaction at a time
                await smtp.send_message(message)

        start = time.time()
        sends = []
        for number in range(count):
            at = start + number / rate
            await asyncio.sleep(max(0.0, at - time.time()))
            sends.append(asyncio.create_task(send(number, at)))
        await asyncio.gather(*sends)
    finally:
        await smtp.quit()
    arrived = await asyncio.to_thread(sink.arrival_times, set(scheduled), 30)
    legs.mailed_ms = [(arrived[ref] - scheduled[ref]) * 1000 for ref in arrived]
    legs.unmailed = len(scheduled) - len(arrived)
    return legs


def measure(rate: float, duration: float, runs: int) -> tuple[list[Legs], list[Legs]]:
    gateway_runs: list[Legs] = []
    direct_runs: list[Legs] = []
    with (
        tempfile.TemporaryDirectory() as scratch,
        private_broker() as bootstrap,
        smtp_sink() as sink,
    ):
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        with gateway(bootstrap, sink, Path(scratch)) as process:
            run_loop(forms_run(process.url, sink, 10, 3, f"warm{time.time_ns() % 10**9}"))
            for run in range(runs):
                sides = ["gateway", "direct"] if run % 2 == 0 else ["direct", "gateway"]
                for side in sides:
                    tag = f"e{run}{side[0]}{time.time_ns() % 10**9}"
                    if side == "gateway":
                        legs = run_loop(forms_run(process.url, sink, rate, duration, tag))
                        gateway_runs.append(legs)
                    else:
                        legs = run_loop(direct_run(sink, rate, duration, tag))
                        direct_runs.append(legs)
                    print(f"  run {run} {side}: {summary(legs)}", flush=True)
    return gateway_runs, direct_runs


def summary(legs: Legs) -> str:
    mailed = legs.mailed_ms or [float("nan")]
    return (
        f"mail p50 {percentile(mailed, 0.5):.0f} ms, p99 {percentile(mailed, 0.99):.0f} ms,"
        f" refused {legs.refused}, unmailed {legs.unmailed}"
    )


def medians(runs: list[Legs], attribute: str, fraction: float) -> float:
    values = [getattr(legs, attribute) for legs in runs if getattr(legs, attribute)]
    return statistics.median(percentile(each, fraction) for each in values) if values else 0.0


def table(gateway_runs: list[Legs], direct_runs: list[Legs], rate: float, duration: float) -> str:
    refused = sum(legs.refused for legs in gateway_runs)
    unmailed = sum(legs.unmailed for legs in gateway_runs)
    mail_p50, mail_p99 = (
        medians(gateway_runs, "mailed_ms", 0.5),
        medians(gateway_runs, "mailed_ms", 0.99),
    )
    floor_p50, floor_p99 = (
        medians(direct_runs, "mailed_ms", 0.5),
        medians(direct_runs, "mailed_ms", 0.99),
    )
    lines = [
        "## End to end: a form to its acknowledgement (`bench/e2e.py`)",
        "",
        f"`intake-gateway run --only http notifier` (one HTTP worker, embedded stores, "
        f"encryption at rest) on a fresh broker, an aiosmtpd sink in its own process. Distinct "
        f"signed submissions posted open-loop at {rate:.0f}/s for {duration:.0f} s; latency from "
        "each one's scheduled time to its 202 and to its acknowledgement at the sink. The "
        "baseline, in the same run at the same rate: the same number of messages sent straight "
        f"to the sink (one kept-open aiosmtplib connection). Medians of {len(gateway_runs)} runs, "
        "the sides alternating. Targets (issue 29): p50 <= 150 ms, p99 <= 400 ms.",
        "",
        "| leg | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        f"| form to 202 | {medians(gateway_runs, 'accepted_ms', 0.5):.0f} | "
        f"{medians(gateway_runs, 'accepted_ms', 0.99):.0f} |",
        f"| form to acknowledgement at the SMTP server | {mail_p50:.0f} | {mail_p99:.0f} |",
        f"| baseline: a message sent straight to the server | {floor_p50:.0f} | {floor_p99:.0f} |",
        "",
        f"Refused: {refused}; accepted but no acknowledgement within 60 s: {unmailed}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    gateway_runs, direct_runs = measure(args.rate, args.duration, args.runs)
    text = table(gateway_runs, direct_runs, args.rate, args.duration)
    print(text)
    write_section("e2e", text)


if __name__ == "__main__":
    main()
