"""Rate limits per client address, per form, per phone number...: token buckets.

Each key gets ``limit`` requests per window (a minute unless told), in bursts of up to that
many. Where the buckets live is a ``BucketStore`` (``gateway.store.buckets``): one process's
memory, a table every HTTP worker of the machine shares (or a client spreading its connections
over the workers would get each worker's allowance), or PostgreSQL's, shared by the replicas.
"""

from __future__ import annotations

from gateway.store.buckets import BucketStore, MemoryBuckets


class RateLimiter:
    """``limit`` requests per ``window_s`` for each key, in the buckets of ``store`` (by
    default this process's memory), ``name`` telling this limiter's keys from another's
    there."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        store: BucketStore | None = None,
        name: str = "",
    ) -> None:
        self._rate = limit / window_s
        self._burst = float(limit)
        self._store = store if store is not None else MemoryBuckets()
        self._name = name

    async def retry_after(self, key: str, now: float | None = None) -> float | None:
        """None when the request may go on (and counts it), else seconds to wait."""
        return await self._take(key, now, count=True)

    async def exhausted(self, key: str, now: float | None = None) -> float | None:
        """Seconds to wait when ``key`` has no allowance left, else None; counts nothing."""
        return await self._take(key, now, count=False)

    async def _take(self, key: str, now: float | None, *, count: bool) -> float | None:
        named = f"{self._name}\n{key}"
        return await self._store.take(named, self._rate, self._burst, count=count, now=now)
