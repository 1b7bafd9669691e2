"""Two gateway replicas on one mailbox (a real Dovecot, a real broker): each message is
published by the one replica whose conditional STORE of the claim keyword won it; the claims of
a replica that died are finished by it when it comes back, or given up for the others after
``claim_timeout_s``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.channels.imap_claims import CLAIMED
from gateway.channels.raw import RawMessage
from gateway.errors import KafkaUnavailable
from gateway.events import topics
from gateway.events.envelope import CloudEvent
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.consumer import TopicReader
from tests.support.dovecot import Dovecot, account, append, count, simple_mail, with_keyword

pytestmark = pytest.mark.integration


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot.create()
    yield server
    server.destroy()


def _normalizer() -> ComplaintNormalizer:
    return ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))


def _replica(
    dovecot: Dovecot, intake: Intake, directory: Path, timeout_s: float = 900.0
) -> tuple[ImapChannel, SqliteStateStore]:
    """A gateway process of its own: its own state store and claim store."""
    state = SqliteStateStore(directory / "state")
    policy = MailboxPolicy(batch=10, shared=True, claim_timeout_s=timeout_s)
    channel = ImapChannel(account(dovecot), intake, FileClaimStore(directory), state, policy)
    return channel, state


class KafkaDownIntake(Intake):
    """The real chain up to the publisher, which never gets an acknowledgement."""

    async def submit(self, raw: RawMessage) -> CloudEvent[Any]:
        raise KafkaUnavailable("the broker did not answer")


async def _claimed(dovecot: Dovecot) -> int:
    return await with_keyword(dovecot, "INBOX", CLAIMED)


async def _events_for(reader: TopicReader, references: set[str]) -> list[str]:
    """The ids of the events published for these references (read until quiet)."""
    records = await reader.read(len(references) * 2, timeout_s=8)
    events = [json.loads(record.value) for record in records]
    return [event["id"] for event in events if event["subject"] in references]


async def test_two_replicas_publish_each_message_once(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN 200 messages and two replicas draining the mailbox at once THEN every message is
    published once (by event id), by one replica or the other, and ends in Processed."""
    ids = [f"<replica-{n}@example.org>" for n in range(200)]
    await append(dovecot, *(simple_mail(i, "Plainte", f"Dossier {n}") for n, i in enumerate(ids)))
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with KafkaPublisher(kafka_settings) as first, KafkaPublisher(kafka_settings) as second:
        one, one_state = _replica(dovecot, Intake(_normalizer(), first), tmp_path / "one")
        two, two_state = _replica(dovecot, Intake(_normalizer(), second), tmp_path / "two")
        handled = await asyncio.gather(one.drain(), two.drain())
    await one_state.close()
    await two_state.close()
    assert sum(handled) == 200
    assert min(handled) > 0, handled  # both took part: the claims were contended
    references = {reference_for(f"email:{i}") for i in ids}
    published = await _events_for(reader, references)
    assert len(published) == len(set(published)) == 200
    assert await count(dovecot, "Processed") == 200
    assert await _claimed(dovecot) == 0
    assert await count(dovecot, "INBOX") == 0


async def test_claims_of_a_replica_that_died_are_finished_or_put_back(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN a replica that claimed messages and never published them (Kafka gone, then the
    process) THEN another replica leaves them alone until the claim timeout, then gives them
    up, claims and publishes them; the first replica, back with its state, finishes its own."""
    await append(
        dovecot, *(simple_mail(f"<died-{n}@example.org>", "Plainte", "x") for n in range(5))
    )
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with KafkaPublisher(kafka_settings) as publisher:
        dying, dying_state = _replica(
            dovecot, KafkaDownIntake(_normalizer(), publisher), tmp_path / "dying"
        )
        with pytest.raises(KafkaUnavailable):
            await dying.drain()
        await dying_state.close()
        assert await _claimed(dovecot) == 5  # claimed, not published, not lost

        # It comes back with its state: it finishes its own claims before anything else.
        back, back_state = _replica(dovecot, Intake(_normalizer(), publisher), tmp_path / "dying")
        assert await back.drain() == 5
        await back_state.close()

        await append(
            dovecot, *(simple_mail(f"<lost-{n}@example.org>", "Plainte", "y") for n in range(3))
        )
        gone, gone_state = _replica(
            dovecot, KafkaDownIntake(_normalizer(), publisher), tmp_path / "gone"
        )
        with pytest.raises(KafkaUnavailable):
            await gone.drain()
        await gone_state.close()
        assert await _claimed(dovecot) == 3  # this one never comes back

        other, other_state = _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "other", timeout_s=0.5
        )
        assert await other.drain() == 0  # not its claims, and not stale yet
        assert await _claimed(dovecot) == 3
        await asyncio.sleep(0.6)
        assert await other.drain() == 3  # given up, claimed again, published
        await other_state.close()
    references = {reference_for(f"email:<died-{n}@example.org>") for n in range(5)} | {
        reference_for(f"email:<lost-{n}@example.org>") for n in range(3)
    }
    published = await _events_for(reader, references)
    assert len(published) == len(set(published)) == 8
    assert await count(dovecot, "Processed") == 8
    assert await _claimed(dovecot) == 0


async def test_a_second_copy_taken_by_another_replica_is_not_published_again(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN a message one replica published WHEN another copy of it (same Message-ID) comes
    later and another replica takes it THEN that replica finds the first in Processed and
    moves the copy there without a second event."""
    copy = simple_mail("<twice@example.org>", "Plainte", "Je n'ai rien reçu.")
    other = simple_mail("<once@example.org>", "Plainte", "Autre chose.")
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with KafkaPublisher(kafka_settings) as publisher:
        await append(dovecot, copy)
        one, one_state = _replica(dovecot, Intake(_normalizer(), publisher), tmp_path / "one")
        assert await one.drain() == 1
        await one_state.close()
        await append(dovecot, copy, other)
        two, two_state = _replica(dovecot, Intake(_normalizer(), publisher), tmp_path / "two")
        assert await two.drain() == 2
        await two_state.close()
    references = {
        reference_for("email:<twice@example.org>"),
        reference_for("email:<once@example.org>"),
    }
    published = await _events_for(reader, references)
    assert len(published) == len(set(published)) == 2  # the copy made no second event
    assert await count(dovecot, "Processed") == 3
    assert await _claimed(dovecot) == 0
