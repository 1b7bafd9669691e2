"""Message claims of a shared mailbox taken in the state store (``StateStore.claim_messages``,
what ``imap_database_claims`` relies on), on SQLite and on PostgreSQL.

Each opening stands for a replica under its own name: on PostgreSQL a pool of its own (two
machines), on SQLite a connection of its own to one file (two processes of one machine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.store.postgres.database import Database
from gateway.store.postgres.state import PostgresStateStore
from gateway.store.sqlite_state import SqliteStateStore
from gateway.store.state import StateStore

pytestmark = pytest.mark.integration

OpenAs = Callable[[str], Awaitable[StateStore]]  # a replica's opening of the state, by name
LONG = 600.0  # a claim timeout no test waits out


@pytest.fixture(params=["sqlite", "postgres"])
async def open_as(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenAs]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    stores: list[StateStore] = []
    databases: list[Database] = []

    async def opener(owner: str) -> StateStore:
        store: StateStore
        if url is None:
            store = SqliteStateStore(tmp_path / "state", owner=owner)
        else:
            databases.append(await Database.open(url))
            store = PostgresStateStore(databases[-1], b"pepper", owner=owner)
        stores.append(store)
        return store

    yield opener
    for store in stores:
        await store.close()
    for database in databases:
        await database.close()


async def test_of_two_replicas_claiming_the_same_messages_at_once_exactly_one_wins_each(
    open_as: OpenAs,
) -> None:
    """GIVEN two replicas WHEN they claim the same 20 messages at the same moment, 50 times
    THEN every message is won by exactly one of them, every time."""
    one, other = await open_as("a"), await open_as("b")
    uids = list(range(1, 21))
    wins = {"a": 0, "b": 0}
    for attempt in range(50):
        mine, theirs = await asyncio.gather(
            one.claim_messages("box", attempt, uids, LONG),
            other.claim_messages("box", attempt, uids[::-1], LONG),
        )
        assert sorted(mine + theirs) == uids, (attempt, mine, theirs)  # each once, none lost
        wins["a"] += len(mine)
        wins["b"] += len(theirs)
        assert await one.claimed_messages("box", attempt) == mine
        assert await other.claimed_messages("box", attempt) == theirs
    assert sum(wins.values()) == 50 * 20


async def test_overlapping_batches_claimed_at_once_each_message_once_and_no_deadlock(
    open_as: OpenAs,
) -> None:
    """GIVEN two replicas claiming overlapping batches in opposite orders at once, 50 times
    THEN the overlap goes to one or the other, the rest to the only one that asked, and no
    call fails (rows are locked in one order)."""
    one, other = await open_as("a"), await open_as("b")
    for attempt in range(50):
        mine, theirs = await asyncio.gather(
            one.claim_messages("box", attempt, list(range(1, 21)), LONG),
            other.claim_messages("box", attempt, list(range(30, 10, -1)), LONG),
        )
        assert not set(mine) & set(theirs)
        assert set(range(1, 11)) <= set(mine)
        assert set(range(21, 31)) <= set(theirs)
        assert set(mine) | set(theirs) == set(range(1, 31))


async def test_a_claim_is_renewed_by_its_owner_and_taken_over_once_stale(
    open_as: OpenAs,
) -> None:
    """GIVEN a message one replica claimed THEN the other cannot take it until the claim is
    older than the timeout; claiming it again renews it; once taken over, the first replica
    no longer holds it."""
    one, other = await open_as("a"), await open_as("b")
    assert await one.claim_messages("box", 1, [1, 2], 0.5) == [1, 2]
    assert await other.claim_messages("box", 1, [1, 2, 3], 0.5) == [3]
    await asyncio.sleep(0.35)
    assert await one.claim_messages("box", 1, [1], 0.5) == [1]  # its own: renewed
    await asyncio.sleep(0.35)  # 0.7 s since 2 was claimed, 0.35 s since 1 was renewed
    assert await other.claim_messages("box", 1, [1, 2], 0.5) == [2]  # 2 was stale, 1 not
    assert await one.claimed_messages("box", 1) == [1]
    assert await other.claimed_messages("box", 1) == [2, 3]
    assert await one.claim_messages("box", 1, [2], 0.5) == []  # taken over: no longer its own


async def test_a_replica_releases_its_own_claims_never_another_s(open_as: OpenAs) -> None:
    one, other = await open_as("a"), await open_as("b")
    assert await one.claim_messages("box", 1, [1, 2, 3], LONG) == [1, 2, 3]
    await other.release_messages("box", 1, [1, 2])
    assert await other.claim_messages("box", 1, [1, 2], LONG) == []
    await one.release_messages("box", 1, [1, 2])
    assert await one.claimed_messages("box", 1) == [3]
    assert await other.claim_messages("box", 1, [1, 2, 3], LONG) == [1, 2]
    assert await other.claimed_messages("box", 1) == [1, 2]


async def test_claims_are_found_again_after_a_restart_and_forgotten_with_a_new_uidvalidity(
    open_as: OpenAs,
) -> None:
    """GIVEN a replica's claims WHEN it is opened again under its name THEN it finds them;
    claims are per mailbox and UIDVALIDITY, and a new UIDVALIDITY forgets the earlier ones."""
    before = await open_as("a")
    assert await before.claim_messages("box", 10, [5, 4], LONG) == [4, 5]
    assert await before.claim_messages("other-box", 10, [4], LONG) == [4]
    await before.close()
    after, stranger = await open_as("a"), await open_as("b")
    assert await after.claimed_messages("box", 10) == [4, 5]
    assert await stranger.claimed_messages("box", 10) == []
    assert await stranger.claim_messages("box", 11, [4], LONG) == [4]  # another UIDVALIDITY
    assert await after.claim_messages("box", 10, [4, 5], LONG) == [4, 5]  # its own, renewed
    assert await after.claimed_messages("box", 11) == []
    assert await after.claimed_messages("box", 10) == []  # the mailbox was recreated
    assert await after.claimed_messages("other-box", 10) == [4]
    assert await after.claim_messages("box", 10, [], LONG) == []
