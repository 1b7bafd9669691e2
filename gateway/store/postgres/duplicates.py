"""The shared ``DuplicateIndex`` on PostgreSQL: a duplicate is found whichever replica took the
earlier complaint (see ``gateway.normalizers.duplicates`` for what counts as one).

The normalizer runs in a worker thread and calls ``find_and_record`` there; the query runs on
the event loop that owns the pool (``run_coroutine_threadsafe``) while that thread waits, so
the loop itself never blocks. The person's rows are read and this complaint's written in one
transaction: two replicas recording one person at once each see the other's row or write
theirs first (``ON CONFLICT DO NOTHING`` keeps one row per person and reference).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from gateway.errors import StateStoreError
from gateway.normalizers.duplicates import MAX_CANDIDATES, WINDOW, earliest_similar
from gateway.store.postgres.database import Database

PRUNE_EVERY_S = 3600.0
QUERY_TIMEOUT_S = 30.0


class _Row(NamedTuple):
    reference: str
    shingles: bytes


class PostgresDuplicateIndex:
    def __init__(self, database: Database, loop: asyncio.AbstractEventLoop) -> None:
        """``loop``: the event loop the database's pool belongs to."""
        self._db = database
        self._loop = loop
        self._pruned_at = 0.0
        self._prune_lock = threading.Lock()

    def close(self) -> None:
        """The database is closed by whoever opened it."""

    def find_and_record(
        self,
        person_keys: Iterable[str],
        reference: str,
        own: bytes,
        received_at: datetime,
    ) -> str | None:
        keys = sorted(set(person_keys))
        if not keys:
            return None
        if _running_loop() is self._loop:  # it would wait on itself
            msg = "the duplicate index is called from a worker thread, not the event loop"
            raise RuntimeError(msg)
        work = self._find_and_record(keys, reference, own, received_at.timestamp())
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result(QUERY_TIMEOUT_S)
        except TimeoutError as exc:
            future.cancel()
            raise StateStoreError("state database: the duplicate look-up timed out") from exc

    async def _find_and_record(
        self, keys: list[str], reference: str, own: bytes, at: float
    ) -> str | None:
        since = at - WINDOW.total_seconds()
        async with self._db.connection() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT DISTINCT ON (received_at, reference) reference, shingles"
                " FROM duplicate_index WHERE person_key = ANY($1::text[]) AND reference != $2"
                " AND received_at BETWEEN $3 AND $4"
                " ORDER BY received_at DESC, reference DESC LIMIT $5",
                keys,
                reference,
                since,
                at,
                MAX_CANDIDATES,
            )
            await connection.executemany(
                "INSERT INTO duplicate_index VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                [(key, at, reference, own) for key in keys],
            )
            if self._prune_due():
                await connection.execute(
                    "DELETE FROM duplicate_index WHERE received_at < $1",
                    at - 2 * WINDOW.total_seconds(),
                )
        return earliest_similar(own, [_Row(row[0], bytes(row[1])) for row in rows])

    def _prune_due(self) -> bool:
        with self._prune_lock:
            now = time.monotonic()
            if now - self._pruned_at < PRUNE_EVERY_S:
                return False
            self._pruned_at = now
            return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
