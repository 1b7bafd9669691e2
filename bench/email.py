"""Email channel: messages/s from a mailbox to Kafka, vs a bare aioimaplib FETCH of the same
messages in the same run; peak RSS of the process.

    python -m bench.email [--messages 5000] [--runs 1]

A throw-away Dovecot (as in the tests) is filled with a mix of the shared corpus's real-world
messages and typical complaints; the channel imports them all (parse, claim-check store,
normalize, publish with acks=all, move to Processed, checkpoint). The baseline FETCHes the same
messages with aioimaplib, in batches of the same size, and does nothing with them.
Targets: >= 200 messages/s and a ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aioimaplib

from bench.common import REPO, private_broker, write_section
from bench.normalize import typical_complaints
from gateway.admin import create_topics
from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, DuplicateIndex, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.settings import ImapSettings, KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.state import StateStore
from tests.support.dovecot import PASSWORD, USER, Dovecot

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


async def channel_import(server: Dovecot, kafka: KafkaSettings, data: Path) -> tuple[int, float]:
    state = StateStore(data / "state")
    async with KafkaPublisher(kafka) as publisher:
        normalizer = ComplaintNormalizer(NormalizerConfig(), DuplicateIndex(None))
        channel = ImapChannel(
            ImapSettings(
                host="127.0.0.1", port=server.port, user=USER, password=PASSWORD, tls=False
            ),
            Intake(normalizer, publisher, contacts=state),
            FileClaimStore(data),
            state,
            MailboxPolicy(batch=BATCH),
        )
        started = time.perf_counter()
        handled = await channel.drain()
        elapsed = time.perf_counter() - started
    state.close()
    return handled, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    messages = mailbox_content(args.messages)
    server = Dovecot.create()
    try:
        with private_broker() as bootstrap, tempfile.TemporaryDirectory() as data:
            kafka = KafkaSettings(bootstrap=bootstrap)
            asyncio.run(create_topics(kafka))
            asyncio.run(fill(server, messages))
            fetched, fetch_s = asyncio.run(bare_fetch(server))
            handled, import_s = asyncio.run(channel_import(server, kafka, Path(data)))
    finally:
        server.destroy()
    bare_rate, rate = fetched / fetch_s, handled / import_s
    text = (
        "## Email channel (`bench/email.py`)\n\n"
        f"A Dovecot mailbox of {len(messages):,} messages (a quarter real-world corpus mail, the "
        "rest ~2 KB complaints), imported by the channel: parse, claim-check store, normalize, "
        f"publish (acks=all), move to Processed, checkpoint; batches of {BATCH}. Baseline: a bare "
        "aioimaplib FETCH of the same messages in the same run. Peak RSS of the process (channel, "
        "normalizers, benchmark). Targets: >= 200 messages/s, ratio >= 0.5.\n\n"
        "| path | messages | seconds | messages/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n"
        f"| bare aioimaplib FETCH (baseline) | {fetched:,} | {fetch_s:.1f} | "
        f"{bare_rate:,.0f} | 1.00 |\n"
        f"| gateway email channel, to Kafka | {handled:,} | {import_s:.1f} | {rate:,.0f} | "
        f"{rate / bare_rate:.2f} |"
    )
    print(text)
    write_section("email", text)


if __name__ == "__main__":
    main()
