"""The PostgreSQL fixtures themselves: a real server per session, a fresh database per test.

What the PostgreSQL state backend's tests rely on: the URL works with asyncpg, TCP asks for the
password, a restart (also while a client writes) keeps every acknowledged commit and takes new
connections, and each test's database is its own and empty.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration

# What a client sees while the server is down or starting: refused sockets (OSError), "the
# database system is starting up" / "shutting down" (PostgresError), a closed connection.
SERVER_AWAY = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

_urls_seen: set[str] = set()


async def user_tables(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await connection.close()
    return [row["table_name"] for row in rows]


async def test_given_a_fresh_database_when_a_table_is_written_then_asyncpg_reads_it_back(
    postgres_url: str,
) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("CREATE TABLE complaint (id int PRIMARY KEY, body text NOT NULL)")
        await connection.executemany(
            "INSERT INTO complaint VALUES ($1, $2)", [(1, "Bruit"), (2, "Déchets")]
        )
        rows = await connection.fetch("SELECT id, body FROM complaint ORDER BY id")
    finally:
        await connection.close()
    assert [tuple(row) for row in rows] == [(1, "Bruit"), (2, "Déchets")]


async def test_given_a_wrong_password_when_connecting_over_tcp_then_it_is_refused(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    wrong = postgres_url.replace(f":{postgres_server.password}@", ":not-the-password@")
    assert wrong != postgres_url
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


@pytest.mark.parametrize("turn", [1, 2])
async def test_given_two_tests_when_each_takes_postgres_url_then_each_database_is_new_and_empty(
    postgres_url: str, turn: int
) -> None:
    """The second turn would see the first's table if the database were shared."""
    assert postgres_url not in _urls_seen
    _urls_seen.add(postgres_url)
    assert await user_tables(postgres_url) == []
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(f"CREATE TABLE left_by_turn_{turn} (id int)")
    finally:
        await connection.close()
    assert await user_tables(postgres_url) == [f"left_by_turn_{turn}"]


@pytest.mark.fault
async def test_given_committed_rows_when_the_server_restarts_then_they_are_kept(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    before = await asyncpg.connect(postgres_url)
    await before.execute("CREATE TABLE complaint (id int PRIMARY KEY)")
    await before.execute("INSERT INTO complaint SELECT generate_series(1, 100)")
    old_pid = postgres_server.pid

    await asyncio.to_thread(postgres_server.restart)

    assert postgres_server.pid not in (None, old_pid)
    with pytest.raises(SERVER_AWAY):
        await before.fetchval("SELECT 1")
    before.terminate()
    after = await asyncpg.connect(postgres_url)
    try:
        assert await after.fetchval("SELECT count(*) FROM complaint") == 100
    finally:
        await after.close()


class Writer:
    """Inserts 1, 2, 3... one commit each, reconnecting while the server is away; keeps each
    number whose commit was acknowledged, and counts the attempts that failed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[int] = []
        self.failures = 0
        self._target = 0
        self._reached = asyncio.Event()

    async def until_more(self, more: int) -> None:
        self._target = len(self.acknowledged) + more
        self._reached.clear()
        await self._reached.wait()

    async def run(self) -> None:
        connection = None
        try:
            while True:
                connection = await self._insert_next(connection)
        finally:
            if connection is not None:
                connection.terminate()

    async def _insert_next(
        self, connection: asyncpg.Connection | None
    ) -> asyncpg.Connection | None:
        number = len(self.acknowledged) + 1
        try:
            if connection is None:
                connection = await asyncpg.connect(self.url, timeout=5)
            await connection.execute("INSERT INTO complaint VALUES ($1)", number)
        except SERVER_AWAY:
            self.failures += 1
            if connection is not None:
                connection.terminate()
            await asyncio.sleep(0.02)
            return None
        self.acknowledged.append(number)
        if len(self.acknowledged) >= self._target:
            self._reached.set()
        return connection


@pytest.mark.fault
async def test_given_a_client_writing_when_the_server_restarts_then_no_acknowledged_commit_is_lost(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """An immediate stop mid-stream: every INSERT the client saw committed is there afterwards
    (the reason the server keeps synchronous_commit on), and the client gets back in."""
    setup = await asyncpg.connect(postgres_url)
    await setup.execute("CREATE TABLE complaint (id int)")  # no key: a retried insert may repeat
    await setup.close()
    writer = Writer(postgres_url)
    async with asyncio.timeout(60), asyncio.TaskGroup() as tasks:
        running = tasks.create_task(writer.run())
        await writer.until_more(200)
        await asyncio.to_thread(postgres_server.restart)
        await writer.until_more(200)
        running.cancel()

    assert writer.failures >= 1, "the restart went unnoticed: did the server really stop?"
    check = await asyncpg.connect(postgres_url)
    try:
        stored = {row["id"] for row in await check.fetch("SELECT id FROM complaint")}
    finally:
        await check.close()
    assert set(writer.acknowledged) <= stored
