"""The shared SQLite file: group-committed writes, and its errors in the gateway's own tree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.errors import StateStoreError
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
