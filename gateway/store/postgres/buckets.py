"""Rate-limit buckets every replica counts against: ``take_token`` (migration 0001), one
statement per request with the bucket's row locked, on the database's clock."""

from __future__ import annotations

import time

from gateway.store.postgres.database import Database

FORGET_AFTER_S = 2 * 86_400  # a bucket untouched this long is full again (windows: a day at most)
PRUNE_EVERY_S = 600.0


class PostgresBuckets:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._pruned_at = time.monotonic()

    async def take(
        self, key: str, rate: float, burst: float, *, count: bool, now: float | None = None
    ) -> float | None:
        """``now`` is not used: the database's clock is the one every replica shares."""
        del now
        wait = await self._db.fetchval("SELECT take_token($1, $2, $3, $4)", key, rate, burst, count)
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            await self._db.execute(
                "DELETE FROM rate_bucket WHERE updated < extract(epoch FROM now()) - $1",
                FORGET_AFTER_S,
            )
        return float(wait) if wait is not None else None
