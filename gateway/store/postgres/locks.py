"""``KeyLocks`` across replicas: PostgreSQL advisory locks, one per key (its 64-bit hash).

A lock is held by a connection of a pool of its own (``Database`` opened for locks): a request
holding a key still reaches the state store through the main pool, so lock holders can never
take every connection the store needs. A replica that dies drops its connections, and the
server its locks with them: a killed replica never leaves a key locked.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator

from gateway.errors import StateStoreError
from gateway.store.postgres.database import ERRORS, Database, state_error


class PostgresKeyLocks:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    @contextlib.asynccontextmanager
    async def holding(self, key: str, timeout_s: float = 60.0) -> AsyncIterator[None]:
        """Hold ``key`` for the block. The block's own errors pass as they are (the connection
        is not the block's); a connection lost meanwhile took its lock with it, so its unlock
        failing is no error."""
        lock = lock_number(key)
        try:
            connection = await self._db.pool.acquire()
        except ERRORS as exc:
            raise state_error(exc) from exc
        try:
            try:
                await connection.execute("SELECT pg_advisory_lock($1)", lock, timeout=timeout_s)
            except TimeoutError as exc:
                msg = f"a lock on an idempotency key was held past {timeout_s:.0f} s"
                raise StateStoreError(msg) from exc
            except ERRORS as exc:
                raise state_error(exc) from exc
            try:
                yield
            finally:
                with contextlib.suppress(*ERRORS):
                    await connection.execute("SELECT pg_advisory_unlock($1)", lock)
        finally:
            with contextlib.suppress(*ERRORS):
                await self._db.pool.release(connection)


def lock_number(key: str) -> int:
    """The advisory lock of ``key``: its hash as a signed 64-bit number."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
