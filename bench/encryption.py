"""What encryption at rest costs, sealed against in clear in the same run (issue 23's target:
encrypted >= 0.9 of plain), for the two paths that store the most objects:

- **webhook** (``python -m bench.webhook --encryption``): two gateways side by side
  (``intake-gateway run --only http``, one HTTP worker each, embedded stores), one with
  ``GATEWAY_ENCRYPTION_AT_REST=false``; distinct signed JSON submissions (a raw copy stored for
  each) open-loop at fixed rates, then at saturation (closed loop), then submissions carrying a
  PDF (multipart: the raw copy and the attachment sealed), at saturation; the sides alternate
  run by run;
- **email** (``python -m bench.email --encryption``): the same Dovecot mailbox imported by the
  email channel with its claim-check store sealing, and with it storing in clear (put back in
  the inbox between imports, the order alternating).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import RunFigures, median_figures, private_broker
from bench.webhook import CONNECTIONS, SECRET, Connection, open_loop, report_failures
from bench.webhook_backends import COMMON, closed_loop, signed
from gateway.admin import create_topics
from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.normalizers.language import warm_up
from gateway.publisher import KafkaPublisher
from gateway.runtime import run_loop
from gateway.settings import ImapSettings, KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.datakeys import SqliteDataKeys
from gateway.store.encrypted import EncryptedClaimStore
from gateway.store.keyring import Keyring
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.dovecot import PASSWORD, USER, Dovecot
from tests.support.forms import signed_multipart
from tests.support.http import GatewayProcess

SIDES = ("in clear", "sealed")
PDF_BYTES = 256 * 1024


def with_files(count: int, tag: str) -> list[tuple[bytes, str, str]]:
    """Signed multipart submissions, each with a PDF of its own: (body, content type, sign)."""
    built = []
    for n in range(count):
        pdf = b"%PDF-1.4\n" + f"{tag} {n} ".encode() * (PDF_BYTES // 16)
        fields = {"email": f"p{n}.{tag}@example.org", "body": f"Voir la lettre {tag} {n}."}
        request = signed_multipart(fields, [(f"l{n}.pdf", pdf, "application/pdf")], SECRET)
        headers = request["headers"]
        built.append((request["content"], headers["content-type"], headers["X-Gateway-Signature"]))
    return built


async def paced_run(port: int, rate: float, duration: float, tag: str) -> tuple[RunFigures, int]:
    requests = signed(int(rate * duration), tag)
    pool = [Connection(port, "") for _ in range(CONNECTIONS)]
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in pool:
        free.put_nowait(connection)

    async def send(n: int) -> bool:
        connection = await free.get()
        try:
            body, signature = requests[n]
            return await connection.post(f"{tag}-{n}", body, signature) == 202
        finally:
            free.put_nowait(connection)

    try:
        return await open_loop(send, rate, duration, CONNECTIONS)
    finally:
        for connection in pool:
            connection.close()


async def saturated(port: int, duration: float, tag: str, files: bool) -> float:
    """Accepted/s with every connection posting its next submission at once."""
    count = int((40 if files else 1200) * duration)
    pool = [TypedConnection(port) for _ in range(CONNECTIONS)]
    if files:
        requests = with_files(count, tag)
    else:
        requests = [(body, "application/json", sig) for body, sig in signed(count, tag)]

    async def send(slot: int, n: int) -> bool:
        body, kind, signature = requests[n]
        return await pool[slot].post(f"{tag}-{n}", body, kind, signature) == 202

    try:
        rate, failures = await closed_loop(send, count, duration)
    finally:
        for connection in pool:
            connection.close()
    report_failures(failures, 0)
    return rate


class TypedConnection:
    """A keep-alive connection posting submissions of any content type (multipart)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, key: str, body: bytes, content_type: str, signature: str) -> int:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._streams
        head = (
            f"POST /v1/webhooks/forms/bench HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"X-Gateway-Signature: {signature}\r\nIdempotency-Key: {key}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status = await reader.readuntil(b"\r\n")
        headers = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return int(status.split()[1])

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


def webhook(rates: list[float], duration: float, runs: int) -> str:
    paced: dict[str, dict[float, list[RunFigures]]] = {s: {r: [] for r in rates} for s in SIDES}
    json_max: dict[str, list[float]] = {side: [] for side in SIDES}
    pdf_max: dict[str, list[float]] = {side: [] for side in SIDES}
    with private_broker() as bootstrap, tempfile.TemporaryDirectory() as scratch:
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        gateways = {
            side: GatewayProcess(
                bootstrap,
                Path(scratch) / side.replace(" ", "-"),
                log=Path(scratch) / f"{side.replace(' ', '-')}.log",
                **COMMON,
                GATEWAY_ENCRYPTION_AT_REST="true" if side == "sealed" else "false",
            )
            for side in SIDES
        }
        try:
            for gateway in gateways.values():
                gateway.start()
            for run in range(runs):
                for side in SIDES if run % 2 == 0 else reversed(SIDES):
                    port, tag = gateways[side].port, f"enc{run}{side[0]}{time.time_ns()}"
                    for rate in rates:
                        result, failures = run_loop(
                            paced_run(port, rate, duration, f"{tag}r{rate:.0f}")
                        )
                        report_failures(failures, rate)
                        paced[side][rate].append(result)
                    json_max[side].append(
                        run_loop(saturated(port, duration, f"{tag}j", files=False))
                    )
                    pdf_max[side].append(run_loop(saturated(port, duration, f"{tag}f", files=True)))
        finally:
            for gateway in gateways.values():
                gateway.stop()
    return webhook_table(paced, json_max, pdf_max, rates, duration, runs)


def webhook_table(
    paced: dict[str, dict[float, list[RunFigures]]],
    json_max: dict[str, list[float]],
    pdf_max: dict[str, list[float]],
    rates: list[float],
    duration: float,
    runs: int,
) -> str:
    rows = []
    for rate in rates:
        clear, sealed = (median_figures(paced[side][rate]) for side in SIDES)
        rows.append(
            f"| JSON, offered {rate:,.0f}/s | {clear.rate:,.0f} (p50 {clear.p50_ms:.1f}, p99 "
            f"{clear.p99_ms:.1f}) | {sealed.rate:,.0f} (p50 {sealed.p50_ms:.1f}, p99 "
            f"{sealed.p99_ms:.1f}) | {sealed.rate / clear.rate:.2f} |"
        )
    for label, results in (
        ("JSON, saturation", json_max),
        (f"{PDF_BYTES // 1024} KiB PDF, saturation", pdf_max),
    ):
        clear, sealed = (statistics.median(results[side]) for side in SIDES)
        rows.append(f"| {label} | {clear:,.0f} | {sealed:,.0f} | {sealed / clear:.2f} |")
    return (
        "## Encryption at rest: web-form webhook (`bench/webhook.py --encryption`)\n\n"
        f"Two gateways side by side in the same run (`run --only http`, one HTTP worker each, "
        "embedded stores), one with `GATEWAY_ENCRYPTION_AT_REST=false`, loaded one after the "
        f"other, the order alternating; medians of {runs} runs of {duration:.0f} s. Distinct "
        "signed JSON submissions (a raw copy sealed each: a data key made, wrapped and kept, "
        "the body sealed in 64 KiB chunks) open-loop at the offered rate, then at saturation "
        f"(closed loop, {CONNECTIONS} connections); then submissions each with a PDF of its own "
        "(multipart: the raw copy and the attachment sealed) at saturation. Accepted/s (latency "
        "in ms); ratio = sealed / in clear. Target: >= 0.9.\n\n"
        "| load | in clear | sealed | ratio |\n| --- | ---: | ---: | ---: |\n" + "\n".join(rows)
    )


def email(messages: list[bytes], runs: int) -> str:
    """The mailbox imported sealed and in clear, alternately, ``runs`` times each."""
    from bench import email as bench_email  # noqa: PLC0415 (it imports this module)

    times: dict[str, list[float]] = {side: [] for side in SIDES}
    with private_broker() as bootstrap, tempfile.TemporaryDirectory() as scratch:
        kafka = KafkaSettings(bootstrap=bootstrap)
        run_loop(create_topics(kafka))
        server = Dovecot.create()
        try:
            run_loop(bench_email.fill(server, messages))
            for run in range(runs):
                for side in SIDES if run % 2 == 0 else tuple(reversed(SIDES)):
                    run_loop(bench_email.restore(server))
                    folder = Path(scratch) / f"{run}-{side.replace(' ', '-')}"
                    handled, seconds = run_loop(
                        email_import(server, kafka, folder, sealed=side == "sealed")
                    )
                    times[side].append(seconds)
        finally:
            server.destroy()
    return email_table(times, handled, runs)


async def email_import(
    server: Dovecot, kafka: KafkaSettings, data: Path, *, sealed: bool
) -> tuple[int, float]:
    """The mailbox drained by the channel, its store sealing or not (same code otherwise)."""
    from bench.email import BATCH  # noqa: PLC0415

    state = SqliteStateStore(data / "state")
    keys = SqliteDataKeys(data / "state")
    claims = EncryptedClaimStore(FileClaimStore(data), Keyring.ephemeral(), keys, encrypt=sealed)
    async with KafkaPublisher(kafka) as publisher:
        channel = ImapChannel(
            ImapSettings(
                host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, tls=False
            ),
            Intake(
                ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)),
                publisher,
                contacts=state,
            ),
            claims,
            state,
            MailboxPolicy(batch=BATCH),
        )
        await asyncio.to_thread(warm_up)
        started = time.perf_counter()
        handled = await channel.drain()
        elapsed = time.perf_counter() - started
    await state.close()
    await keys.close()
    return handled, elapsed


def email_table(times: dict[str, list[float]], messages: int, runs: int) -> str:
    clear, sealed = (messages / statistics.median(times[side]) for side in SIDES)
    return (
        "## Encryption at rest: email channel (`bench/email.py --encryption`)\n\n"
        f"The same Dovecot mailbox of {messages:,} messages (as in the email benchmark) imported "
        "by the email channel with its claim-check store sealing every raw copy and attachment, "
        "and storing them in clear (`encrypt=False`), in the same run, put back in the inbox "
        f"between imports, the order alternating; medians of {runs} imports each. Target: "
        ">= 0.9.\n\n"
        "| store | messages/s | ratio |\n| --- | ---: | ---: |\n"
        f"| in clear | {clear:,.0f} | 1.00 |\n| sealed | {sealed:,.0f} | {sealed / clear:.2f} |"
    )
