"""Web-form webhook on each storage backend in the same run: embedded (SQLite + files under the
data dir), shared (PostgreSQL + S3), two replicas on the shared servers, and optionally the
shared servers with PostgreSQL's fsync on, and each half alone (``postgres-files``,
``sqlite-s3``) to tell what each costs. Run by ``python -m bench.webhook --backends ...``.

Every gateway is ``intake-gateway run --only http`` with one HTTP worker, started once before
the runs; the runs take the sides in turn, rotated run by run. The "shared" side is replica A
alone; "two-replicas" spreads the connections over A and B (separate data dirs, the same
PostgreSQL database and bucket), as a round-robin load balancer would. Each request is a signed
JSON submission from another person with their own text (``bench/submissions.py``).

A side's run: open-loop load at each offered rate (latency from each request's scheduled time),
then saturation: every connection posts its next submission as soon as the last is answered,
for the same duration. Over the saturation window the CPU of the side's gateway processes and
of its PostgreSQL and SeaweedFS servers (``/proc``) and the statements PostgreSQL ran
(``pg_stat_statements``) are divided by the submissions accepted.
Targets (issue 21): shared >= 0.8 of embedded accepted/s; p99 <= 50 ms at 300/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.backends import SharedState, cpu_seconds, objects_settings, s3_server, shared_state
from bench.common import RunFigures, median_figures, private_broker
from bench.submissions import form_letters, submissions
from bench.webhook import (
    BENCH_FORM,
    CONNECTIONS,
    SECRET,
    Connection,
    open_loop,
    report_failures,
)
from gateway.admin import create_topics
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.support.http import GatewayProcess
from tests.support.s3 import S3Bucket, S3Server

SIDES = {
    "embedded": "SQLite + files (embedded)",
    "shared": "PostgreSQL + S3, one gateway",
    "two-replicas": "PostgreSQL + S3, two gateways",
    "shared-fsync": "PostgreSQL with fsync on + S3, one gateway",
    "postgres-files": "PostgreSQL + files (state only shared)",
    "sqlite-s3": "SQLite + S3 (objects only shared)",
}
# side -> (state in PostgreSQL, objects in S3, PostgreSQL's fsync on, gateway processes)
LAYOUT = {
    "embedded": (False, False, False, 1),
    "shared": (True, True, False, 1),
    "two-replicas": (True, True, False, 2),
    "shared-fsync": (True, True, True, 1),
    "postgres-files": (True, False, False, 1),
    "sqlite-s3": (False, True, False, 1),
}
COMMON = {"GATEWAY_HTTP_WORKERS": "1", **BENCH_FORM}
SATURATION_CEILING = 1200  # submissions prepared per second of a saturation window


@dataclass
class Side:
    name: str
    ports: list[int]
    gateway_pids: list[int]
    backend_pids: list[int] = field(default_factory=list)  # PostgreSQL, SeaweedFS
    state: SharedState | None = None
    profile: Path | None = None  # py-spy's collapsed stacks of the first gateway at saturation


@dataclass
class SideRuns:
    latency: dict[float, list[RunFigures]]
    saturation: list[float] = field(default_factory=list)
    gateway_cpu_ms: list[float] = field(default_factory=list)
    backend_cpu_ms: list[float] = field(default_factory=list)
    statements: list[float] = field(default_factory=list)
    top: Counter[str] = field(default_factory=Counter)  # statement -> calls, last run
    letters: list[tuple[float, float]] = field(default_factory=list)  # form letters: /s, CPU ms
    paced_cpu_ms: dict[float, list[float]] = field(default_factory=dict)  # rate -> CPU ms each


class Servers:
    """The shared servers and gateway processes, each started when a side first needs it
    (``shared`` and ``two-replicas`` share replica A) and stopped with ``stack``."""

    def __init__(self, stack: contextlib.ExitStack, bootstrap: str, scratch: Path) -> None:
        self._stack, self._bootstrap, self._scratch = stack, bootstrap, scratch
        self._s3: S3Server | None = None
        self._states: dict[bool, SharedState] = {}
        self._gateways: dict[tuple[bool, bool, bool, int], GatewayProcess] = {}

    def s3(self) -> S3Server:
        if self._s3 is None:
            self._s3 = self._stack.enter_context(s3_server())
            self._s3.create_bucket("bench")
        return self._s3

    def state(self, durable: bool) -> SharedState:
        if durable not in self._states:
            self._states[durable] = self._stack.enter_context(shared_state(durable=durable))
        return self._states[durable]

    def side(self, name: str) -> Side:
        in_postgres, in_s3, durable, processes = LAYOUT[name]
        env: dict[str, str] = {}
        state = self.state(durable) if in_postgres else None
        backend = state.pids() if state else []
        if in_s3:
            server = self.s3()
            bucket = S3Bucket(server.endpoint, server.access_key, server.secret_key, "bench")
            env |= objects_settings(bucket)
            backend += [server.process.pid] if server.process else []
        if state:
            env["GATEWAY_STATE_URL"] = state.url
        gateways = [self._gateway((in_postgres, in_s3, durable, n), env) for n in range(processes)]
        return Side(name, [g.port for g in gateways], [g.pid for g in gateways], backend, state)

    def _gateway(self, key: tuple[bool, bool, bool, int], env: dict[str, str]) -> GatewayProcess:
        if key not in self._gateways:
            folder = self._scratch / "-".join(str(int(part)) for part in key)
            gateway = GatewayProcess(
                self._bootstrap, folder, log=folder.with_suffix(".log"), **COMMON, **env
            )
            gateway.start()
            self._stack.callback(gateway.stop)
            self._gateways[key] = gateway
        return self._gateways[key]


@contextlib.contextmanager
def started_sides(bootstrap: str, names: list[str], scratch: Path) -> Iterator[dict[str, Side]]:
    """The servers and gateway processes of the sides asked for, started once."""
    with contextlib.ExitStack() as stack:
        servers = Servers(stack, bootstrap, scratch)
        yield {name: servers.side(name) for name in names}


def signed(count: int, tag: str, letters: bool = False) -> list[tuple[bytes, str]]:
    """Distinct people's own complaints, or (``letters``) one campaign's form letter."""
    bodies = form_letters(count, tag) if letters else submissions(count, tag)
    return [(body, sign(body, SECRET)) for body in bodies]


async def closed_loop(
    send: Callable[[int, int], Awaitable[bool]], count: int, seconds: float
) -> tuple[float, int]:
    """Every connection posts its next submission as soon as the last is answered, for
    ``seconds`` (or until ``count`` are sent); accepted/s over the whole time, and failures."""
    numbers = itertools.count()
    accepted = failures = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def connection(slot: int) -> None:
        nonlocal accepted, failures
        while time.perf_counter() < deadline and (n := next(numbers)) < count:
            ok = await send(slot, n)
            accepted += ok
            failures += not ok

    await asyncio.gather(*(connection(slot) for slot in range(CONNECTIONS)))
    return accepted / (time.perf_counter() - start), failures


async def saturated(
    port: int, requests: list[tuple[bytes, str]], seconds: float, tag: str
) -> float:
    """Accepted/s of ``requests`` (body, signature) posted by a closed loop of
    ``CONNECTIONS`` keep-alive connections to ``port`` for ``seconds``."""
    pool = [Connection(port, "") for _ in range(CONNECTIONS)]

    async def send(slot: int, n: int) -> bool:
        body, signature = requests[n]
        return await pool[slot].post(f"{tag}-{n}", body, signature) == 202

    try:
        rate, _ = await closed_loop(send, len(requests), seconds)
    finally:
        for connection in pool:
            connection.close()
    return rate


async def side_run(
    side: Side, rates: list[float], duration: float, tag: str, into: SideRuns
) -> None:
    """One run of a side: open-loop load at each rate, then saturation."""
    pool = [Connection(side.ports[n % len(side.ports)], "") for n in range(CONNECTIONS)]
    try:
        for rate in rates:
            requests = signed(int(rate * duration), f"{tag}o{rate:.0f}")
            cpu = cpu_seconds(side.gateway_pids)
            result, failures = await paced(pool, requests, rate, duration, tag)
            accepted = max(len(requests) - failures, 1)
            cpu_ms = (cpu_seconds(side.gateway_pids) - cpu) / accepted * 1000
            report_failures(failures, rate)
            into.latency[rate].append(result)
            into.paced_cpu_ms.setdefault(rate, []).append(cpu_ms)
        await saturation(side, pool, duration, tag, into)
    finally:
        for connection in pool:
            connection.close()


async def paced(
    pool: list[Connection],
    requests: list[tuple[bytes, str]],
    rate: float,
    duration: float,
    tag: str,
) -> tuple[RunFigures, int]:
    """The open-loop load: each request on the next free connection."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)

    async def send(n: int) -> bool:
        connection = await free.get()
        try:
            body, signature = requests[n]
            return await connection.post(f"{tag}-{rate:.0f}-{n}", body, signature) == 202
        finally:
            free.put_nowait(connection)

    return await open_loop(send, rate, duration, CONNECTIONS)


async def saturation(
    side: Side, pool: list[Connection], duration: float, tag: str, into: SideRuns
) -> None:
    requests = signed(int(SATURATION_CEILING * duration), f"{tag}s")

    async def send(slot: int, n: int) -> bool:
        body, signature = requests[n]
        return await pool[slot].post(f"{tag}-s{n}", body, signature) == 202

    calls = side.state.statement_calls() if side.state else Counter[str]()
    gateway_cpu, backend_cpu = cpu_seconds(side.gateway_pids), cpu_seconds(side.backend_pids)
    started = time.perf_counter()
    sampler = py_spy(side.gateway_pids[0], duration, side.profile) if side.profile else None
    rate, failures = await closed_loop(send, len(requests), duration)
    if sampler is not None:
        await asyncio.to_thread(sampler.wait, 60)
    accepted = rate * (time.perf_counter() - started)
    report_failures(failures, 0)
    into.saturation.append(rate)
    into.gateway_cpu_ms.append((cpu_seconds(side.gateway_pids) - gateway_cpu) / accepted * 1000)
    into.backend_cpu_ms.append((cpu_seconds(side.backend_pids) - backend_cpu) / accepted * 1000)
    if side.state:
        after = Counter(side.state.statement_calls())
        after.subtract(calls)
        ran = Counter({q: c for q, c in after.items() if c > 0 and "pg_stat_statements" not in q})
        into.statements.append(sum(ran.values()) / accepted)
        into.top = Counter({query: calls / accepted for query, calls in ran.items()})


def py_spy(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling a gateway (without pausing it) into ``output``, collapsed stacks."""
    command = ["py-spy", "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", "200", "--nonblocking", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(
    names: list[str], rates: list[float], duration: float, runs: int, profile: Path | None = None
) -> tuple[dict[str, SideRuns], str]:
    """Runs of every side, rotated run by run; the machine's load average when it began."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    results = {name: SideRuns({rate: [] for rate in rates}) for name in names}
    with (
        tempfile.TemporaryDirectory() as scratch,
        private_broker() as bootstrap,
        started_sides(bootstrap, names, Path(scratch)) as sides,
    ):
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        for name, side in sides.items():  # warm-up: connections, pools, the broker's JIT
            run_loop(
                side_run(side, [200.0], 3, f"warm{name}{time.time_ns()}", SideRuns({200.0: []}))
            )
        for run in range(runs):
            order = names[run % len(names) :] + names[: run % len(names)]
            for name in order:
                tag = f"{name[:3]}{run}t{time.time_ns() % 10**9}"
                if profile is not None:
                    profile.mkdir(parents=True, exist_ok=True)
                    sides[name].profile = profile / f"{name}-{run}.txt"
                run_loop(side_run(sides[name], rates, duration, tag, results[name]))
                print(f"  run {run} {name}: {results[name].saturation[-1]:.0f}/s", flush=True)
    return results, " ".join(load)


def ratio_range(results: dict[str, SideRuns], name: str) -> str:
    """Median and range of this side's saturation over embedded's in the same run."""
    if "embedded" not in results or name == "embedded":
        return "1.00" if name == "embedded" else "-"
    pairs = zip(results[name].saturation, results["embedded"].saturation, strict=True)
    ratios = [mine / embedded for mine, embedded in pairs]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def table(results: dict[str, SideRuns], duration: float, runs: int, load: str) -> str:
    rates = sorted(next(iter(results.values())).latency)
    head = "| backends | accepted/s at saturation | ratio to embedded (range) |"
    for rate in rates:
        head += f" at {rate:,.0f}/s: accepted/s | p50 ms | p99 ms |"
    head += " gateway CPU ms / submission | PostgreSQL + S3 CPU ms / submission |"
    head += " PostgreSQL statements / submission |"
    rows = [head, "| --- |" + " ---: |" * (head.count("|") - 2)]
    for name, side in results.items():
        cells = [
            SIDES[name],
            f"{statistics.median(side.saturation):,.0f}",
            ratio_range(results, name),
        ]
        for rate in rates:
            figures = median_figures(side.latency[rate])
            cells += [f"{figures.rate:,.0f}", f"{figures.p50_ms:.1f}", f"{figures.p99_ms:.1f}"]
        cells.append(f"{statistics.median(side.gateway_cpu_ms):.1f}")
        backend = statistics.median(side.backend_cpu_ms) if name != "embedded" else None
        cells.append(f"{backend:.1f}" if backend is not None else "-")
        cells.append(f"{statistics.median(side.statements):.1f}" if side.statements else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return (
        "## Web-form webhook on each backend (`bench/webhook.py --backends`)\n\n"
        f"Signed JSON submissions, each from another person with their own text (~1.5 KB), to "
        "`intake-gateway run --only http` with one HTTP worker per gateway process, every side "
        f"started once and the sides taken in turn, rotated run by run; median of {runs} runs. "
        f"Each run: open-loop load at the offered rate for {duration:.0f} s over {CONNECTIONS} "
        "keep-alive connections (latency from each request's scheduled time), then saturation: "
        f"each connection posts again as soon as it is answered, for {duration:.0f} s. The "
        "ratio is a side's saturation over embedded's in the same run. Two gateways: separate "
        "data dirs, one PostgreSQL database and one bucket, the connections spread over both "
        "ports. PostgreSQL is the test suite's server (Debian's package, `fsync` and "
        "`full_page_writes` off) unless the row says fsync on (with `full_page_writes` and "
        "`synchronous_commit` on, on this VM's ext4 disk); `pg_stat_statements` is loaded to "
        "count the statements. S3 is SeaweedFS `weed mini` as the tests run it. Load generator, "
        "gateways, broker, PostgreSQL and SeaweedFS share the machine's 2 cores, with other "
        f"people's test runs (load average {load} when the run began). CPU per submission: "
        "`/proc` user + system time of the side's processes over the saturation window. "
        "Targets (issue 21): PostgreSQL + S3 >= 0.8 of embedded accepted/s; p99 <= 50 ms at "
        "300/s.\n\n" + "\n".join(rows)
    )


def top_statements(results: dict[str, SideRuns], name: str = "shared", count: int = 15) -> str:
    """The statements of one accepted submission on the shared side, most frequent first."""
    if name not in results:
        return ""
    lines = [
        f"{calls:5.2f}  {query[:150]}" for query, calls in results[name].top.most_common(count)
    ]
    return f"PostgreSQL statements per accepted submission ({name}, last run):\n" + "\n".join(lines)
