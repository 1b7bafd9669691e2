"""The gateway against a hand-written peer (``bench/peers/webhook.py``), same run, same load.

    python -m bench.peer [--duration 6] [--runs 3] [--rate 300]

Two sides on one fresh local broker, each one process with one HTTP worker: the gateway doing
all its work (``intake-gateway run --only http`` on the embedded stores: raw copy, idempotency,
limits, normalisers, encryption at rest) and the peer (FastAPI, pydantic, the same HMAC check,
a CloudEvent published with acks=all and idempotence). The sides are taken in turn, rotated run
by run. Each run of a side: open-loop load at ``--rate`` (latency from each request's scheduled
time), then saturation (every connection posts again once answered). Every request is a signed
JSON submission from another person with their own text (``bench/submissions.py``), never a
repeated body. CPU per accepted submission: ``/proc`` user + system time of all the side's
processes over the saturation window. Targets (issue 29): the gateway >= 0.5 of the peer's
accepted/s, CPU <= 1.2 ms a submission.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.backends import cpu_seconds
from bench.common import median_figures, private_broker, write_section
from bench.webhook import CONNECTIONS, SECRET
from bench.webhook_backends import Servers, Side, SideRuns, saturated, side_run, signed
from gateway.admin import create_topics
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings
from tests.support.kafka import free_port, wait_for_port

NAMES = {"embedded": "intake-gateway (all its work, embedded stores)", "peer": "hand-written peer"}


@contextlib.contextmanager
def peer_side(bootstrap: str, log: Path) -> Iterator[Side]:
    port = free_port()
    command = [sys.executable, "-m", "bench.peers.webhook", "--port", str(port)]
    command += ["--bootstrap", bootstrap, "--secret", SECRET]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "the peer")
        yield Side("peer", [port], [process.pid])
    finally:
        process.terminate()
        process.wait(timeout=30)


LETTERS_CEILING = 5_000  # form letters prepared a second of saturation (more than either takes)


def letters_saturation(side: Side, duration: float, tag: str) -> tuple[float, float]:
    """Accepted/s and CPU ms a submission of a campaign's form letters at saturation."""
    requests = signed(int(LETTERS_CEILING * duration), tag, letters=True)
    cpu, started = cpu_seconds(side.gateway_pids), time.perf_counter()
    rate = run_loop(saturated(side.ports[0], requests, duration, tag))
    accepted = rate * (time.perf_counter() - started)
    return rate, (cpu_seconds(side.gateway_pids) - cpu) / max(accepted, 1) * 1000


def measure(rate: float, duration: float, runs: int) -> tuple[dict[str, SideRuns], str]:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results = {name: SideRuns({rate: []}) for name in NAMES}
    with (
        tempfile.TemporaryDirectory() as scratch,
        private_broker() as bootstrap,
        contextlib.ExitStack() as stack,
    ):
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        sides = {
            "embedded": Servers(stack, bootstrap, Path(scratch)).side("embedded"),
            "peer": stack.enter_context(peer_side(bootstrap, Path(scratch) / "peer.log")),
        }
        for name, side in sides.items():  # warm-up: connections, the broker's JIT
            warm = SideRuns({200.0: []})
            run_loop(side_run(side, [200.0], 3, f"warm{name}{time.time_ns()}", warm))
        names = list(NAMES)
        for run in range(runs):
            for name in names[run % 2 :] + names[: run % 2]:
                tag = f"{name[:3]}{run}p{time.time_ns() % 10**9}"
                run_loop(side_run(sides[name], [rate], duration, tag, results[name]))
                print(f"  run {run} {name}: {results[name].saturation[-1]:.0f}/s", flush=True)
                letters, cpu_ms = letters_saturation(sides[name], duration, f"{tag}l")
                results[name].letters.append((letters, cpu_ms))
                print(f"  run {run} {name}, form letters: {letters:.0f}/s", flush=True)
    return results, load


def table(results: dict[str, SideRuns], rate: float, duration: float, runs: int, load: str) -> str:
    gateway, peer = results["embedded"], results["peer"]
    pairs = zip(gateway.saturation, peer.saturation, strict=True)
    ratios = [mine / theirs for mine, theirs in pairs]
    rows = [
        f"| side | accepted/s at saturation | at {rate:,.0f}/s: accepted/s | p50 ms | p99 ms "
        f"| CPU ms / accepted submission | at {rate:,.0f}/s: CPU ms / submission |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, side in results.items():
        figures = median_figures(side.latency[rate])
        rows.append(
            f"| {NAMES[name]} | {statistics.median(side.saturation):,.0f} | {figures.rate:,.0f} "
            f"| {figures.p50_ms:.1f} | {figures.p99_ms:.1f} "
            f"| {statistics.median(side.gateway_cpu_ms):.2f} "
            f"| {statistics.median(side.paced_cpu_ms[rate]):.2f} |"
        )
    for name, side in results.items():
        if side.letters:
            letters = statistics.median(rate for rate, _ in side.letters)
            cpu_ms = statistics.median(cpu for _, cpu in side.letters)
            rows.append(
                f"| {NAMES[name]}: a campaign's form letter, each with its sender's own details "
                f"| {letters:,.0f} | | | | {cpu_ms:.2f} | |"
            )
    return (
        "## The gateway against a hand-written peer (`bench/peer.py`)\n\n"
        "Signed JSON submissions, each from another person with their own text, to the gateway "
        "(`run --only http`, one HTTP worker, embedded stores, doing all its work) and to "
        "`bench/peers/webhook.py` (FastAPI, pydantic, the same HMAC check, a CloudEvent "
        "published with acks=all and idempotence, nothing kept), one process each, on one "
        f"fresh broker; the sides in turn, rotated run by run; median of {runs} runs. Each "
        f"run: open loop at {rate:,.0f}/s for {duration:.0f} s over {CONNECTIONS} keep-alive "
        f"connections, then saturation for {duration:.0f} s. CPU: `/proc` user + system of the "
        "side's processes over the saturation window, per accepted submission, and over the "
        f"open-loop window at {rate:,.0f}/s (what a submission costs below saturation, where "
        "batching shares less). Load "
        f"generator, broker and both sides share the machine's {os.cpu_count()} cores (load "
        f"average {load} when the run began). Targets (issue 29): the gateway >= 0.5 of the "
        "peer's accepted/s; CPU <= 1.2 ms a submission.\n\n"
        + "\n".join(rows)
        + f"\n\nThe gateway's accepted/s over the peer's: **{statistics.median(ratios):.2f}** "
        f"(runs {min(ratios):.2f}-{max(ratios):.2f})."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0)
    args = parser.parse_args()
    results, load = measure(args.rate, args.duration, args.runs)
    text = table(results, args.rate, args.duration, args.runs, load)
    print(text)
    write_section("webhook-peer", text)


if __name__ == "__main__":
    main()
