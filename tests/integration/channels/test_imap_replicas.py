"""Two gateway replicas on one mailbox (a real Dovecot, a real broker): each message is
published by the one replica that won its claim; the claims of a replica that died are finished
by it when it comes back, or taken over by the others after ``claim_timeout_s``.

Both kinds of claims, as the gateway assembles them: replicas each with their own SQLite claim
on the server (a keyword set by a conditional STORE); replicas sharing one PostgreSQL claim in
it (``claim_messages``), which also holds on a server without CONDSTORE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.channels.imap_claims import MailboxClaiming
from gateway.channels.imap_keyword_claims import CLAIMED
from gateway.channels.raw import RawMessage
from gateway.errors import ChannelUnavailable, KafkaUnavailable
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
from tests.support.dovecot import (
    WITHOUT_CONDSTORE,
    Dovecot,
    account,
    append,
    count,
    simple_mail,
    with_keyword,
)

pytestmark = pytest.mark.integration


def _normalizer() -> ComplaintNormalizer:
    return ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))


@dataclass
class Replication:
    """How the replicas keep their state, and where they claim the mailbox's messages."""

    state_of: Callable[[Path], Awaitable[StateStore]]  # a replica's state, by its data folder
    claiming: MailboxClaiming
    database: Database | None = None

    async def claimed(self, dovecot: Dovecot) -> int:
        """Messages claimed and not released, wherever the claims are."""
        keywords = await with_keyword(dovecot, "INBOX", CLAIMED)
        if self.database is None:
            return keywords
        assert keywords == 0  # database claims never touch the server's flags
        return int(await self.database.fetchval("SELECT count(*) FROM imap_message_claim"))


async def _shared_database(postgres_url: str) -> Replication:
    """The one PostgreSQL the replicas share (each under its own name): claims taken in it."""
    database = await Database.open(postgres_url)

    async def state_of(directory: Path) -> StateStore:
        return PostgresStateStore(database, b"pepper", owner=directory.name)

    return Replication(state_of, MailboxClaiming.DATABASE, database)


@pytest.fixture(params=["sqlite", "postgres"])
async def states(request: pytest.FixtureRequest) -> AsyncIterator[Replication]:
    """Each replica's state: a SQLite file of its own (replicas on separate machines: claims on
    the server), or the one PostgreSQL they share (claims in it), as ``email_service`` does."""
    if request.param == "sqlite":

        async def state_of(directory: Path) -> StateStore:
            return SqliteStateStore(directory / "state")

        yield Replication(state_of, MailboxClaiming.SERVER_KEYWORD)
        return
    replication = await _shared_database(request.getfixturevalue("postgres_url"))
    yield replication
    assert replication.database is not None
    await replication.database.close()


async def _replica(
    dovecot: Dovecot, intake: Intake, directory: Path, states: Replication, timeout_s: float = 900.0
) -> tuple[ImapChannel, StateStore]:
    """A gateway process of its own: its own claim store, and its state."""
    state = await states.state_of(directory)
    policy = MailboxPolicy(batch=10, shared=True, claim_timeout_s=timeout_s)
    channel = ImapChannel(
        account(dovecot), intake, FileClaimStore(directory), state, policy, states.claiming
    )
    return channel, state


class KafkaDownIntake(Intake):
    """The real chain up to the publisher, which never gets an acknowledgement."""

    async def submit(self, raw: RawMessage) -> CloudEvent[Any]:
        raise KafkaUnavailable("the broker did not answer")


async def _events_for(reader: TopicReader, references: set[str]) -> list[str]:
    """The ids of the events published for these references (read until quiet)."""
    records = await reader.read(len(references) * 2, timeout_s=8)
    events = [json.loads(record.value) for record in records]
    return [event["id"] for event in events if event["subject"] in references]


async def test_two_replicas_publish_each_message_once(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: Replication
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
    assert await states.claimed(dovecot) == 0
    assert await count(dovecot, "INBOX") == 0


async def test_claims_of_a_replica_that_died_are_finished_or_put_back(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: Replication
) -> None:
    """GIVEN a replica that claimed messages and never published them (Kafka gone, then the
    process) THEN another replica leaves them alone until the claim timeout, then takes them
    over and publishes them; the first replica, back with its state, finishes its own."""
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
        assert await states.claimed(dovecot) == 5  # claimed, not published, not lost

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
        assert await states.claimed(dovecot) == 3  # this one never comes back

        other, other_state = await _replica(
            dovecot, Intake(_normalizer(), publisher), tmp_path / "other", states, timeout_s=0.5
        )
        assert await other.drain() == 0  # not its claims, and not stale yet
        assert await states.claimed(dovecot) == 3
        await asyncio.sleep(0.6)
        assert await other.drain() == 3  # taken over, published
        await other_state.close()
    references = {reference_for(f"email:<died-{n}@example.org>") for n in range(5)} | {
        reference_for(f"email:<lost-{n}@example.org>") for n in range(3)
    }
    published = await _events_for(reader, references)
    assert len(published) == len(set(published)) == 8
    assert await count(dovecot, "Processed") == 8
    assert await states.claimed(dovecot) == 0


async def test_a_second_copy_taken_by_another_replica_is_not_published_again(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path, states: Replication
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
    assert await states.claimed(dovecot) == 0


@pytest.fixture
def dovecot_without_condstore() -> Iterator[Dovecot]:
    server = Dovecot.create(imap_capability=WITHOUT_CONDSTORE)
    yield server
    server.destroy()


async def test_replicas_sharing_a_database_need_no_condstore(
    dovecot_without_condstore: Dovecot,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    """GIVEN a server that does not offer CONDSTORE WHEN two replicas each with their own state
    try to share its mailbox THEN they refuse it (keyword claims need CONDSTORE) and publish
    nothing; WHEN two replicas sharing one PostgreSQL drain 100 messages at once THEN each
    message is published once, by one or the other, both taking part."""
    dovecot = dovecot_without_condstore
    ids = [f"<no-condstore-{n}@example.org>" for n in range(100)]
    await append(dovecot, *(simple_mail(i, "Plainte", f"Dossier {n}") for n, i in enumerate(ids)))
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    replication = await _shared_database(postgres_url)
    try:
        async with (
            KafkaPublisher(kafka_settings) as first,
            KafkaPublisher(kafka_settings) as second,
        ):
            alone = SqliteStateStore(tmp_path / "alone" / "state")
            keyword = ImapChannel(
                account(dovecot),
                Intake(_normalizer(), first),
                FileClaimStore(tmp_path / "alone"),
                alone,
                MailboxPolicy(batch=10, shared=True),
            )
            with pytest.raises(ChannelUnavailable, match="CONDSTORE"):
                await keyword.drain()
            await alone.close()
            assert await count(dovecot, "INBOX") == 100

            one, one_state = await _replica(
                dovecot, Intake(_normalizer(), first), tmp_path / "one", replication
            )
            two, two_state = await _replica(
                dovecot, Intake(_normalizer(), second), tmp_path / "two", replication
            )
            handled = await asyncio.gather(one.drain(), two.drain())
            await one_state.close()
            await two_state.close()
        assert sum(handled) == 100
        assert min(handled) > 0, handled  # both took part: the claims were contended
        references = {reference_for(f"email:{i}") for i in ids}
        published = await _events_for(reader, references)
        assert len(published) == len(set(published)) == 100
        assert await count(dovecot, "Processed") == 100
        assert await count(dovecot, "INBOX") == 0
        assert await replication.claimed(dovecot) == 0
    finally:
        assert replication.database is not None
        await replication.database.close()
