"""The shared SQLite file: group-committed writes, and its errors in the gateway's own tree."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from gateway.errors import StateStoreError
from gateway.store import sqlite
from gateway.store.sqlite import SqliteFile


async def test_writes_arriving_together_share_a_commit_and_all_land(tmp_path: Path) -> None:
    database = SqliteFile(tmp_path / "x.sqlite", "CREATE TABLE t (n INTEGER)")
    try:
        await asyncio.gather(
            *(database.write("INSERT INTO t VALUES (?)", (n,)) for n in range(200))
        )
        count = await database.read(lambda db: db.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 200
    finally:
        database.close()
    assert oct((tmp_path / "x.sqlite").stat().st_mode & 0o777) == "0o600"


async def test_a_failed_write_or_read_is_a_state_store_error_for_every_waiter() -> None:
    database = SqliteFile(None, "CREATE TABLE t (n INTEGER)")
    try:
        with pytest.raises(StateStoreError):
            await database.write("INSERT INTO missing VALUES (?)", (1,))
        with pytest.raises(StateStoreError):
            await database.read(lambda db: db.execute("SELECT * FROM missing").fetchall())
        await database.write("INSERT INTO t VALUES (?)", (1,))  # the file is still usable
    finally:
        database.close()


async def test_reads_arriving_together_share_a_thread_hop_and_each_gets_its_own_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = SqliteFile(None, "CREATE TABLE t (n INTEGER)")
    hops = 0
    to_thread = asyncio.to_thread

    async def counting(function: object, *args: object) -> object:
        nonlocal hops
        hops += 1
        return await to_thread(function, *args)  # type: ignore[arg-type]

    try:
        await database.write("INSERT INTO t VALUES (?)", *[(n,) for n in range(50)])
        monkeypatch.setattr(asyncio, "to_thread", counting)
        answers = await asyncio.gather(
            *(database.one("SELECT n FROM t WHERE n = ?", (n,)) for n in range(50)),
            database.read(lambda db: db.execute("SELECT * FROM missing").fetchall()),
            return_exceptions=True,
        )
    finally:
        database.close()
    assert answers[:50] == [(n,) for n in range(50)]
    assert isinstance(answers[50], StateStoreError)
    assert hops <= 2  # the first read alone, then all that came meanwhile


async def test_quick_statements_run_at_once_without_a_thread_and_the_others_see_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = SqliteFile(tmp_path / "x.sqlite", "CREATE TABLE t (n INTEGER PRIMARY KEY)")
    hops: list[object] = []
    to_thread = asyncio.to_thread

    async def counting(function: object, *args: object) -> object:
        hops.append(function)
        return await to_thread(function, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", counting)
    try:
        await database.write("INSERT INTO t VALUES (?)", (1,), (2,), quick=True)
        inserted = await database.change(
            lambda db: db.execute("INSERT INTO t VALUES (3) RETURNING n").fetchone(), quick=True
        )
        found = await database.one("SELECT n FROM t WHERE n = ?", (2,), quick=True)
        assert (inserted, found, hops) == ((3,), (2,), [])
        seen = await database.read(lambda db: db.execute("SELECT n FROM t").fetchall())
        assert seen == [(1,), (2,), (3,)]  # through the other connection, in a thread
        assert len(hops) == 1
    finally:
        database.close()


async def test_given_the_file_held_by_another_writer_then_a_quick_write_waits_in_a_thread(
    tmp_path: Path,
) -> None:
    """The event loop never waits for the file: the write goes the grouped way and lands once
    the other writer is done."""
    path = tmp_path / "x.sqlite"
    database = SqliteFile(path, "CREATE TABLE t (n INTEGER PRIMARY KEY)")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")
        writing = asyncio.create_task(database.write("INSERT INTO t VALUES (2)", (), quick=True))
        ticks = 0
        for _ in range(20):  # the loop goes on while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not writing.done()
        other.execute("COMMIT")
        await asyncio.wait_for(writing, timeout=10)
        rows = await database.read(lambda db: db.execute("SELECT n FROM t").fetchall())
        assert (ticks, rows) == (20, [(1,), (2,)])
    finally:
        other.close()
        database.close()


async def test_the_quick_connection_leaves_checkpoints_to_a_thread_every_so_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "QUICK_COMMITS_A_CHECKPOINT", 20)
    path = tmp_path / "x.sqlite"
    database = SqliteFile(path, "CREATE TABLE t (n INTEGER PRIMARY KEY)")

    async def rows_in_the_file_itself() -> int:
        """Rows of the main file alone, without its WAL: what was checkpointed."""
        await asyncio.gather(*database._checkpoints)
        copy = tmp_path / f"copy-{time.monotonic_ns()}.sqlite"
        shutil.copyfile(path, copy)
        with contextlib.closing(sqlite3.connect(copy)) as alone:
            return int(alone.execute("SELECT count(*) FROM t").fetchone()[0])

    try:
        await database.read(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        for n in range(19):
            await database.write("INSERT INTO t VALUES (?)", (n,), quick=True)
        assert await rows_in_the_file_itself() == 0
        await database.write("INSERT INTO t VALUES (?)", (19,), quick=True)
        assert await rows_in_the_file_itself() == 20
    finally:
        database.close()
