"""The IMAP channel against a real Dovecot and a real Kafka broker.

Conformance: every file of ../shared/corpus/email/ is appended to the mailbox; each must end as
an event (then in ``Processed``) or quarantined with a DLQ record, none may stop the channel.
The outcome per file is printed (pytest -s, or the captured output of a failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import json
import os
import tracemalloc
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.admin import create_topics
from gateway.channels.imap import EmailService, ImapChannel, MailboxPolicy
from gateway.channels.mail import parse_mail
from gateway.channels.raw import RawMessage
from gateway.errors import KafkaUnavailable
from gateway.events import topics
from gateway.events.complaint import ComplaintReceived, DocumentAdded
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.conftest import SHARED
from tests.support.consumer import TopicReader
from tests.support.dovecot import (
    Dovecot,
    account,
    append,
    count,
    simple_mail,
)
from tests.support.kafka import LocalBroker

pytestmark = pytest.mark.integration

CORPUS = SHARED / "corpus" / "email"


@pytest.fixture
async def channel_parts(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> AsyncIterator[tuple[Intake, FileClaimStore, SqliteStateStore]]:
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        normalizer = ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))
        yield Intake(normalizer, publisher, contacts=state), FileClaimStore(tmp_path), state
    await state.close()


async def test_every_corpus_email_ends_as_an_event_or_in_quarantine(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
    kafka_settings: KafkaSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) >= 90
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    await append(dovecot, *(path.read_bytes() for path in files))
    channel = ImapChannel(account(dovecot), *channel_parts)
    handled = await channel.drain()
    assert handled == len(files)
    assert await count(dovecot, "INBOX") == 0
    processed, quarantined = await count(dovecot, "Processed"), await count(dovecot, "Quarantine")
    assert processed + quarantined == len(files)
    expected = {}
    for path in files:
        parsed = parse_mail(path.read_bytes())
        key = f"email:{parsed.message_id}" if parsed.message_id else None
        expected[path] = reference_for(key) if key else None
    keyed = {ref for ref in expected.values() if ref}
    events = [json.loads(r.value) for r in await reader.read(len(files), timeout_s=20)]
    published = {event["subject"] for event in events}
    with capsys.disabled():
        print(f"\nIMAP conformance: {processed} processed, {quarantined} quarantined")
        for path, ref in expected.items():
            outcome = (
                "event " + ref
                if ref in published
                else ("event (no Message-ID)" if ref is None else "MISSING")
            )
            print(f"  {path.relative_to(CORPUS)}: {outcome}")
    assert keyed <= published  # every message with a Message-ID has its event
    assert len({event["id"] for event in events}) == len(events)  # no event twice


async def test_nothing_twice_redelivery_restart_and_resume(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    first = simple_mail("<first@example.org>", "Plainte", "Je n'ai jamais reçu ma carte.")
    await append(dovecot, first, first)  # the same message delivered twice
    assert await ImapChannel(account(dovecot), *channel_parts).drain() == 2
    restarted = ImapChannel(account(dovecot), *channel_parts)  # a new process, same state
    assert await restarted.drain() == 0
    await append(dovecot, simple_mail("<second@example.org>", "Autre", "Toujours rien reçu."))
    assert await restarted.drain() == 1  # resumes after the checkpoint
    events = [json.loads(r.value) for r in await reader.read(3, timeout_s=5)]
    assert sorted(event["subject"] for event in events) == sorted(
        [reference_for("email:<first@example.org>"), reference_for("email:<second@example.org>")]
    )
    assert await count(dovecot, "Processed") == 3


async def test_a_reply_quoting_a_reference_adds_a_document(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    existing = reference_for("email:<original@example.org>")
    await append(
        dovecot,
        simple_mail(
            "<reply@example.org>", f"Re: votre dossier {existing}", "Voici le document demandé."
        ),
    )
    await ImapChannel(account(dovecot), *channel_parts).drain()
    event = json.loads((await reader.read(1))[0].value)
    assert (event["type"], event["subject"]) == ("complaint.document_added", existing)


async def test_a_french_auto_reply_is_flagged_and_gets_no_due_dates(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    await append(
        dovecot,
        simple_mail(
            "<ooo@example.org>",
            "Réponse automatique : absent du bureau",
            "Je suis absente jusqu'au 2 décembre.",
        ),
    )
    await ImapChannel(account(dovecot), *channel_parts).drain()
    data = json.loads((await reader.read(1))[0].value)["data"]
    assert "auto_reply" in data["flags"]
    assert data["due"] is None


@pytest.mark.fault
async def test_the_channel_survives_the_server_going_away(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
) -> None:
    policy = MailboxPolicy(poll_interval_s=0.2, idle_s=1.0, max_backoff_s=1.0)
    channel = ImapChannel(account(dovecot), *channel_parts, policy=policy)
    task = asyncio.create_task(channel.run())
    await append(dovecot, simple_mail("<before@example.org>", "Plainte", "Avant l'arrêt."))
    await _until(lambda: count(dovecot, "Processed"), 1)
    await asyncio.to_thread(dovecot.stop)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(dovecot.start)
    await append(dovecot, simple_mail("<after@example.org>", "Plainte", "Après le redémarrage."))
    await _until(lambda: count(dovecot, "Processed"), 2)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_mail_delivered_while_a_batch_is_published_is_not_left_waiting(
    dovecot: Dovecot,
    channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore],
) -> None:
    """The server announces it (EXISTS) in the middle of the channel's FETCH or MOVE, which
    aioimaplib drops: the channel must still see it, not wait for the next mail or the end of
    IDLE (here a minute; five by default)."""
    intake, claims, state = channel_parts
    real_submit = intake.submit
    delivered = asyncio.Event()

    async def submit_and_meanwhile_deliver(raw: RawMessage) -> object:
        if not delivered.is_set():
            delivered.set()
            await append(dovecot, simple_mail("<second@example.org>", "Plainte", "Deuxième."))
            await asyncio.sleep(0.5)  # the server's notice arrives while this one is published
        return await real_submit(raw)

    intake.submit = submit_and_meanwhile_deliver  # type: ignore[method-assign]
    policy = MailboxPolicy(idle_s=60.0)
    channel = ImapChannel(account(dovecot), intake, claims, state, policy=policy)
    task = asyncio.create_task(channel.run())
    try:
        await append(dovecot, simple_mail("<first@example.org>", "Plainte", "Première."))
        await _until(lambda: count(dovecot, "Processed"), 2, timeout_s=15)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(probe: object, expected: int, timeout_s: float = 30) -> None:
    """Poll another process's mailbox until it holds ``expected`` messages."""
    async with asyncio.timeout(timeout_s):
        for _ in range(int(timeout_s * 5)):
            if await probe() == expected:  # type: ignore[operator]
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the mailbox never held {expected} messages")


@pytest.mark.fault
@pytest.mark.slow
async def test_kafka_down_mid_batch_then_every_message_once_and_moved(
    dovecot: Dovecot, private_broker: LocalBroker, tmp_path: Path
) -> None:
    """GIVEN mail waiting and Kafka stopped WHEN the channel runs THEN nothing is moved;
    WHEN Kafka is back THEN every message is published once (by event id) and moved."""
    kafka = KafkaSettings(
        bootstrap=private_broker.bootstrap, publish_timeout_s=3.0, request_timeout_s=2.0
    )
    await create_topics(kafka)
    mails = [simple_mail(f"<k{n}@example.org>", "Plainte", f"Message {n}") for n in range(5)]
    await append(dovecot, *mails)
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka) as publisher:
        intake = Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)), publisher
        )
        channel = ImapChannel(account(dovecot), intake, FileClaimStore(tmp_path), state)
        assert await channel.drain() == 5
        await asyncio.to_thread(private_broker.stop)
        await append(
            dovecot,
            *[simple_mail(f"<d{n}@example.org>", "Plainte", f"Pendant {n}") for n in range(3)],
        )
        with pytest.raises(KafkaUnavailable):
            await channel.drain()
        assert await count(dovecot, "INBOX") == 3  # nothing moved that Kafka did not take
        await asyncio.to_thread(private_broker.start)
        assert await channel.drain() == 3
    await state.close()
    assert await count(dovecot, "INBOX") == 0
    assert await count(dovecot, "Processed") == 8
    reader = TopicReader(kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark_beginning()
    ids = {json.loads(record.value)["id"] for record in await reader.read(20, timeout_s=5)}
    assert len(ids) == 8


class ExplodingNormalizer:
    """The real chain, except that it fails (as a bug would) on subjects saying 'explode'."""

    def __init__(self) -> None:
        self._real = ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))

    def normalize(self, raw: RawMessage) -> ComplaintReceived | DocumentAdded:
        if raw.subject and "explode" in raw.subject:
            raise RuntimeError("a bug in a normalizer")
        return self._real.normalize(raw)


async def test_a_message_that_breaks_the_chain_is_quarantined_and_the_next_goes_on(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    dlq = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await dlq.mark()
    await append(
        dovecot,
        simple_mail("<bad@example.org>", "please explode", "x"),
        simple_mail("<good@example.org>", "Plainte", "Rien reçu."),
    )
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        channel = ImapChannel(
            account(dovecot),
            Intake(ExplodingNormalizer(), publisher),
            FileClaimStore(tmp_path),
            state,
        )
        assert await channel.drain() == 2
    await state.close()
    assert (await count(dovecot, "Quarantine"), await count(dovecot, "Processed")) == (1, 1)
    record = json.loads((await dlq.read(1))[0].value)
    assert record["data"]["reason_code"] == "unreadable_message"
    assert record["data"]["source_message"]["uri"].startswith("file://")


async def test_a_message_nested_too_deep_is_quarantined_and_the_mailbox_goes_on(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """500 forwards of forwards: before, a RecursionError outside the quarantine path ended
    every session on that message, and nothing behind it was ever read."""
    deep = b"From: a@example.org\r\nSubject: fond\r\n\r\nAu fond.\r\n"
    for _ in range(500):
        deep = b"From: a@example.org\r\nContent-Type: message/rfc822\r\n\r\n" + deep
    dlq = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await dlq.mark()
    await append(dovecot, deep, simple_mail("<after-deep@example.org>", "Plainte", "Rien."))
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        intake = Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)), publisher
        )
        channel = ImapChannel(account(dovecot), intake, FileClaimStore(tmp_path), state)
        assert await channel.drain() == 2
    await state.close()
    assert (await count(dovecot, "Quarantine"), await count(dovecot, "Processed")) == (1, 1)
    record = json.loads((await dlq.read(1))[0].value)
    assert record["data"]["reason_code"] == "too_deeply_nested"


async def test_a_very_long_mail_is_published_cut_with_the_whole_text_attached(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """300,000 characters of text: before, an event Kafka refused (over its 1 MB) and the
    mail in quarantine; now the start in the event, every word in an attachment."""
    text = "Historique de mon dossier, appel après appel. " * 6_500
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    await append(dovecot, simple_mail("<long@example.org>", "Plainte", text))
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        intake = Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)), publisher
        )
        claims = FileClaimStore(tmp_path)
        assert await ImapChannel(account(dovecot), intake, claims, state).drain() == 1
        data = json.loads((await reader.read(1))[0].value)["data"]
        [whole] = [a for a in data["attachments"] if a["filename"] == "message-text.txt"]
        kept = (await claims.get(whole["sha256"])).decode()
    await state.close()
    assert await count(dovecot, "Processed") == 1
    assert len(data["body"]) <= 100_000
    assert "needs_review" in data["flags"]
    assert kept.strip() == text.strip()


@pytest.mark.fault
async def test_a_failing_mailbox_never_stops_the_others(
    dovecot: Dovecot, channel_parts: tuple[Intake, FileClaimStore, SqliteStateStore]
) -> None:
    """GIVEN two mailboxes, one with a wrong password WHEN the email service runs THEN the
    good one is read all the same, and the bad one keeps retrying without stopping anything."""
    policy = MailboxPolicy(poll_interval_s=0.2, idle_s=1.0, max_backoff_s=1.0)
    good = ImapChannel(account(dovecot), *channel_parts, policy=policy)
    wrong = account(dovecot).model_copy(update={"password": SecretStr("wrong")})
    bad = ImapChannel(wrong, *channel_parts, policy=policy)
    service = asyncio.create_task(EmailService([bad, good]).run())
    await append(dovecot, simple_mail("<two-boxes@example.org>", "Plainte", "Rien reçu."))
    await _until(lambda: count(dovecot, "Processed"), 1)
    await asyncio.sleep(2)  # the bad mailbox has failed and retried meanwhile
    assert not service.done()
    service.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await service


async def test_a_mail_over_the_attachment_limit_is_never_held_whole(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """A 16 MB mail (a 12 MB scan) with a 2 MB limit: its raw copy is streamed to the claim
    store piece by piece, the scan is in the event as rejected with its size, the text and the
    small file go through; the process never held the mail or the scan whole."""
    scan, letter = os.urandom(12 * 1024 * 1024), b"%PDF-1.4 lettre" * 3000
    message = EmailMessage(policy=email.policy.SMTP)  # CRLF, as a server keeps it
    message["From"], message["To"] = "Marie Tremblay <marie@example.org>", "plaintes@ramq.example"
    message["Subject"], message["Message-ID"] = "Mes documents", "<scan@example.org>"
    message.set_content("Bonjour, voici ma lettre et le scan de mon dossier.\n")
    message.add_attachment(letter, maintype="application", subtype="pdf", filename="lettre.pdf")
    message.add_attachment(scan, maintype="application", subtype="pdf", filename="scan.pdf")
    raw = message.as_bytes()
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    await append(dovecot, raw)
    state = SqliteStateStore(tmp_path / "state")
    policy = MailboxPolicy(max_attachment_bytes=2 * 1024 * 1024)
    async with KafkaPublisher(kafka_settings) as publisher:
        intake = Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)), publisher
        )
        claims = FileClaimStore(tmp_path)
        channel = ImapChannel(account(dovecot), intake, claims, state, policy)
        tracemalloc.start()
        try:
            assert await channel.drain() == 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        data = json.loads((await reader.read(1))[0].value)["data"]
        kept_raw = await claims.get(data["source_message"]["uri"].rsplit("/", 1)[-1])
    await state.close()
    assert await count(dovecot, "Processed") == 1
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes"
    assert kept_raw == raw  # the raw copy whole, though never in memory whole
    by_name = {attachment["filename"]: attachment for attachment in data["attachments"]}
    assert by_name["lettre.pdf"]["sha256"] == hashlib.sha256(letter).hexdigest()
    assert by_name["scan.pdf"]["status"] == "rejected"
    assert abs(by_name["scan.pdf"]["size"] - len(scan)) < 1024
    assert "2097152-byte limit" in by_name["scan.pdf"]["rejection_reason"]
    assert "voici ma lettre" in data["body"]
