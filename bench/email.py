"""Email channel: messages/s from a mailbox to Kafka, vs a bare aioimaplib FETCH of the same
messages in the same run; peak RSS of the process.

    python -m bench.email [--messages 5000] [--runs 3] [--live 150] [--live-rate 10]

A throw-away Dovecot (as in the tests) is filled with a mix of the shared corpus's real-world
messages and typical complaints; the channel imports them all (parse, claim-check store,
normalize, publish with acks=all, move to Processed, checkpoint). The baseline FETCHes the same
messages with aioimaplib, in batches of the same size, and does nothing with them.
Targets: >= 200 messages/s and a ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import aioimaplib

from bench.common import REPO, percentile, private_broker, write_section
from bench.normalize import typical_complaints
from gateway.admin import create_topics
from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.channels.imap_keyword_claims import CLAIMED
from gateway.events import topics
from gateway.intake import Intake
from gateway.logs import configure_logging
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.normalizers.language import warm_up
from gateway.publisher import KafkaPublisher
from gateway.runtime import run_loop
from gateway.settings import ImapSettings, KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.consumer import TopicReader
from tests.support.dovecot import PASSWORD, USER, Dovecot, simple_mail

BATCH = 100


def mailbox_content(count: int) -> list[bytes]:
    corpus = sorted((REPO.parent / "shared" / "corpus" / "email").rglob("*.eml"))
    real = [path.read_bytes() for path in corpus]
    typical = typical_complaints(200)
    messages = []
    for n in range(count):
        if n % 4 == 0 and real:
            messages.append(real[n % len(real)])
        else:
            body = typical[n % len(typical)]
            messages.append(
                (
                    f"From: Person {n} <person{n}@example.org>\r\nSubject: Plainte {n}\r\n"
                    f"Message-ID: <bench-{n}@example.org>\r\nContent-Type: text/plain; "
                    f"charset=utf-8\r\n\r\n{body}\r\n"
                ).encode()
            )
    return messages


async def client(server: Dovecot) -> aioimaplib.IMAP4:
    imap = aioimaplib.IMAP4("127.0.0.1", server.port, timeout=60)
    await imap.wait_hello_from_server()
    await imap.login(USER, PASSWORD)
    return imap


async def fill(server: Dovecot, messages: list[bytes]) -> None:
    imap = await client(server)
    for message in messages:
        await imap.append(message, mailbox="INBOX")
    await imap.logout()


async def restore(server: Dovecot) -> None:
    """Every message imported back into the inbox, unclaimed: the same mailbox again."""
    imap = await client(server)
    for folder in ("Processed", "Quarantine"):
        if (await imap.select(folder)).result != "OK":
            continue  # never created: nothing went there
        uids = (await imap.uid_search("ALL", charset=None)).lines[0].split()
        for start in range(0, len(uids), BATCH):  # aioimaplib recurses once per line of a read
            await imap.uid("move", b",".join(uids[start : start + BATCH]).decode(), "INBOX")
    await imap.select("INBOX")
    await imap.store("1:*", "-FLAGS.SILENT", f"({CLAIMED})")
    await imap.logout()


async def bare_fetch(server: Dovecot) -> tuple[int, float]:
    imap = await client(server)
    await imap.select("INBOX")
    uids = (await imap.uid_search("ALL")).lines[0].split()
    started = time.perf_counter()
    for start in range(0, len(uids), BATCH):
        batch = b",".join(uids[start : start + BATCH]).decode()
        await imap.uid("fetch", batch, "(UID INTERNALDATE BODY.PEEK[])")
    elapsed = time.perf_counter() - started
    await imap.logout()
    return len(uids), elapsed


def mailbox_channel(
    server: Dovecot,
    publisher: KafkaPublisher,
    state: SqliteStateStore,
    data: Path,
    shared: bool = False,
) -> ImapChannel:
    """The gateway's email channel on the benchmark's mailbox, as the service builds it."""
    return ImapChannel(
        ImapSettings(host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, tls=False),
        Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)),
            publisher,
            contacts=state,
        ),
        FileClaimStore(data),
        state,
        MailboxPolicy(batch=BATCH, shared=shared),
    )


async def channel_import(
    server: Dovecot, kafka: KafkaSettings, data: Path, replicas: int = 0
) -> tuple[int, float]:
    """The mailbox drained by one channel (``replicas=0``: not shared, with its checkpoint), or
    by that many replicas at once on the shared mailbox (claims), each with its own state."""
    states = [SqliteStateStore(data / f"state-{n}") for n in range(max(replicas, 1))]
    async with KafkaPublisher(kafka) as publisher:
        channels = [
            mailbox_channel(server, publisher, state, data / f"r{n}", shared=replicas > 0)
            for n, state in enumerate(states)
        ]
        await asyncio.to_thread(warm_up)  # the language models, loaded as the service starts
        started = time.perf_counter()
        handled = sum(await asyncio.gather(*(channel.drain() for channel in channels)))
        elapsed = time.perf_counter() - started
    for state in states:
        state.close()
    return handled, elapsed


def live_mail(number: int, tag: str) -> tuple[str, bytes]:
    message_id = f"<live-{tag}-{number}@example.org>"
    return message_id, simple_mail(message_id, f"Plainte {number}", typical_complaints(1)[0])


async def bare_idle_latency(server: Dovecot, count: int, per_second: float) -> list[float]:
    """Seconds from the start of an APPEND until a bare client in IDLE hears of the mail (in a
    folder of its own: the channel's INBOX stays as it was)."""
    writer = await client(server)
    await writer.create("Bare")
    watcher = await client(server)
    await watcher.select("Bare")
    idle = await watcher.idle_start(timeout=600)
    latencies = []
    for number in range(count):
        started = time.perf_counter()
        await writer.append(live_mail(number, "bare")[1], mailbox="Bare")
        while not any(
            b"EXISTS" in line
            for line in await watcher.wait_server_push(timeout=30)
            if isinstance(line, bytes)
        ):
            pass
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(max(0.0, 1 / per_second - (time.perf_counter() - started)))
    watcher.idle_done()
    await asyncio.wait_for(idle, 10)
    await writer.logout()
    await watcher.logout()
    return latencies


async def channel_latency(
    server: Dovecot, kafka: KafkaSettings, data: Path, count: int, per_second: float
) -> list[float]:
    """Seconds from the start of an APPEND to the live mailbox (the channel in IDLE) until its
    event is on Kafka (the record's creation time)."""
    reader = TopicReader(kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    state = SqliteStateStore(data / "live-state")
    async with KafkaPublisher(kafka) as publisher:
        channel = mailbox_channel(server, publisher, state, data)
        running = asyncio.create_task(channel.run())
        await asyncio.sleep(3)  # logged in, the INBOX done, in IDLE
        writer = await client(server)
        appended: dict[str, float] = {}
        for number in range(count):
            message_id, mail = live_mail(number, "gateway")
            appended[message_id] = time.time()
            await writer.append(mail, mailbox="INBOX")
            await asyncio.sleep(max(0.0, appended[message_id] + 1 / per_second - time.time()))
        records = await reader.read(count, timeout_s=120)
        await writer.logout()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    state.close()
    latencies = []
    for record in records:
        message_id = json.loads(record.value)["data"]["source_message"]["id"]
        if message_id in appended:
            latencies.append(record.timestamp / 1000 - appended[message_id])
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--live", type=int, default=150, help="mails appended one by one")
    parser.add_argument("--live-rate", type=float, default=10.0, help="... per second")
    parser.add_argument("--runs", type=int, default=3, help="imports (each a new mailbox)")
    parser.add_argument(
        "--encryption",
        action="store_true",
        help="only encryption at rest on and off, the same mailbox imported each way",
    )
    args = parser.parse_args()
    configure_logging()  # JSON lines, as in production
    messages = mailbox_content(args.messages)
    if args.encryption:
        from bench import encryption  # noqa: PLC0415 (it imports this module)

        text = encryption.email(messages, args.runs)
        print(text)
        write_section("email-encryption", text)
        return
    fetches: list[tuple[int, float]] = []
    imports: list[tuple[int, float]] = []
    one_shared: list[tuple[int, float]] = []
    two_shared: list[tuple[int, float]] = []
    with private_broker() as bootstrap, tempfile.TemporaryDirectory() as scratch:
        kafka = KafkaSettings(bootstrap=bootstrap)
        run_loop(create_topics(kafka))
        for run in range(args.runs):
            server = Dovecot.create()
            try:
                run_loop(fill(server, messages))
                fetches.append(run_loop(bare_fetch(server)))
                imports.append(run_loop(channel_import(server, kafka, Path(scratch) / str(run))))
                for replicas, results in ((1, one_shared), (2, two_shared)):
                    run_loop(restore(server))
                    data = Path(scratch) / f"{run}-shared-{replicas}"
                    results.append(run_loop(channel_import(server, kafka, data, replicas)))
                if run == args.runs - 1:  # the live mailbox once, after the last import
                    bare_live = run_loop(bare_idle_latency(server, args.live, args.live_rate))
                    live = run_loop(
                        channel_latency(server, kafka, Path(scratch), args.live, args.live_rate)
                    )
            finally:
                server.destroy()
    fetched, fetch_s = fetches[0][0], statistics.median(s for _, s in fetches)
    handled, import_s = imports[0][0], statistics.median(s for _, s in imports)
    bare_rate, rate = fetched / fetch_s, handled / import_s
    shared_rows = "".join(
        f"| {label} | {results[0][0]:,} | {statistics.median(s for _, s in results):.1f} | "
        f"{results[0][0] / statistics.median(s for _, s in results):,.0f} | "
        f"{results[0][0] / statistics.median(s for _, s in results) / bare_rate:.2f} |\n"
        for label, results in (
            ("the same, shared mailbox: one replica claiming each batch", one_shared),
            ("the same, shared mailbox: two replicas at once (one process)", two_shared),
        )
    )
    text = (
        "## Email channel (`bench/email.py`)\n\n"
        f"Median of {args.runs} imports, each of a new Dovecot mailbox of {len(messages):,} "
        "messages (a quarter real-world corpus mail, the "
        "rest ~2 KB complaints), imported by the channel: parse, claim-check store, normalize, "
        f"publish (acks=all), move to Processed, checkpoint; batches of {BATCH}. Baseline: a bare "
        "aioimaplib FETCH of the same messages in the same run. Peak RSS of the process (channel, "
        "normalizers, benchmark). Targets: >= 200 messages/s, ratio >= 0.5.\n\n"
        "| path | messages | seconds | messages/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n"
        f"| bare aioimaplib FETCH (baseline) | {fetched:,} | {fetch_s:.1f} | "
        f"{bare_rate:,.0f} | 1.00 |\n"
        f"| gateway email channel, to Kafka | {handled:,} | {import_s:.1f} | {rate:,.0f} | "
        f"{rate / bare_rate:.2f} |\n" + shared_rows + "\n"
        "The shared rows (`GATEWAY_IMAP_SHARED`) import the same messages again, put back in the "
        "inbox: each batch claimed first by a conditional STORE of a keyword; two replicas in "
        "one process share its core, so they show what contention on the claims costs, not "
        "what a second machine adds.\n\n"
        f"Live mailbox: {args.live} mails appended one by one at {args.live_rate:.0f}/s, each "
        "timed from the start of its APPEND. Baseline: a bare aioimaplib client in IDLE hearing "
        "of it (the floor: the server's push); the channel in IDLE until its event is on Kafka "
        "(the record's creation time).\n\n"
        "| path | mails | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |\n"
        f"| bare IDLE client, EXISTS pushed (baseline) | {len(bare_live)} | "
        f"{percentile(bare_live, 0.5) * 1000:.0f} | {percentile(bare_live, 0.99) * 1000:.0f} |\n"
        f"| gateway email channel, event on Kafka | {len(live)} | "
        f"{percentile(live, 0.5) * 1000:.0f} | {percentile(live, 0.99) * 1000:.0f} |"
    )
    print(text)
    write_section("email", text)


if __name__ == "__main__":
    main()
