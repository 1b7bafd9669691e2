"""Two gateway replicas on one mailbox (a real Dovecot, a real broker): each message is
published by the one replica whose conditional STORE of the claim keyword won it; the claims of
a replica that died are finished by it when it comes back, or given up for the others after
``claim_timeout_s``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
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
from gateway.store.postgres.database import Database
from gateway.store.postgres.state import PostgresStateStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from gateway.store.state import StateStore
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


@pytest.fixture(params=["sqlite", "postgres"])
async def states(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[Path], Awaitable[StateStore]]]:
    """Each replica's state: a SQLite file of its own (replicas on separate machines), or the
    one PostgreSQL they share (each replica's claims under its own name)."""
    database = None
    if request.param == "postgres":
        database = await Database.open(request.getfixturevalue("postgres_url"))

    async def state_of(directory: Path) -> StateStore:
        if database is None:
            return SqliteStateStore(directory / "state")
        return PostgresStateStore(database, b"pepper", owner=directory.name)

    yield state_of
    if database is not None:
        await database.close()


StateOf = Callable[[Path], Awaitable[StateStore]]


async def _replica(
    dovecot: Dovecot, intake: Intake, directory: Path, states: StateOf, timeout_s: float = 900.0
) -> tuple[ImapChannel, StateStore]:
    """A gateway process of its own: its own claim store, and its state."""
    state = await states(directory)
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
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: StateOf
) -> None:
    """GIVEN 200 messages and two replicas draining the mailbox at once THEN every message is
    published once (by event id), by one replica or the other, and ends in Processed."""
    ids = [f"<replica-{n}@example.org>" for n in range(200)]
    await append(dovecot, *(simple_mail(i, "Plainte", f"Dossier {n}") for n, i in enumerate(ids)))
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    async with KafkaPublisher(kafka_settings) as first, KafkaPublisher(kafka_settings) as second:
        one, one_state = await _replica(
            dovecot, Intake(_normalizer(), first), tmp_path / "one", states
        )
        two, two_state = await _replica(
            dovecot, Intake(_normalizer(), second), tmp_path / "two", states
        )
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
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: StateOf
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
        dying, dying_state = await _replica(
            dovecot, KafkaDownIntake(_normalizer(), publisher), tmp_path / "dying", states
        )
        with pytest.raises(KafkaUnavailable):
            await dying.drain()
        await dying_state.close()
        assert await _claimed(dovecot) == 5  # claimed, not published, not lost

        # It comes back with its state: it finishes its own claims before anything else.
        back, back_state = await _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "dying", states
        )
        assert await back.drain() == 5
        await back_state.close()

        await append(
            dovecot, *(simple_mail(f"<lost-{n}@example.org>", "Plainte", "y") for n in range(3))
        )
        gone, gone_state = await _replica(
            dovecot, KafkaDownIntake(_normalizer(), publisher), tmp_path / "gone", states
        )
        with pytest.raises(KafkaUnavailable):
            await gone.drain()
        await gone_state.close()
        assert await _claimed(dovecot) == 3  # this one never comes back

        other, other_state = await _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "other", states, timeout_s=0.5
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
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: StateOf
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
        one, one_state = await _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "one", states
        )
        assert await one.drain() == 1
        await one_state.close()
        await append(dovecot, copy, other)
        two, two_state = await _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "two", states
        )
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
