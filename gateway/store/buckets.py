"""Where rate-limit buckets live: ``BucketStore``. In memory (``MemoryBuckets``: one process),
in a memory-mapped file (``SharedBuckets``: the HTTP workers of one machine), or in PostgreSQL
(``gateway.store.postgres.buckets``: every replica). ``gateway.web.ratelimit`` counts on them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_SLOT = struct.Struct("<Qdd")  # key hash (0: free), tokens, time of the last request
_HEADER = 64  # the salt of the key hashes (random per table), then room to spare
_PROBES = 8  # slots looked at for a key before the least recently used is taken over


class BucketStore(Protocol):
    async def take(
        self, key: str, rate: float, burst: float, *, count: bool, now: float | None = None
    ) -> float | None:
        """Seconds to wait when the bucket of ``key`` has no token left, else None (and a
        token is taken when ``count``). ``now``: a moment to use instead of the clock (tests
        of the embedded stores)."""
        ...


class MemoryBuckets:
    """The buckets of one process, in memory."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(
        self, key: str, rate: float, burst: float, *, count: bool, now: float | None = None
    ) -> float | None:
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (burst, moment))
        tokens = min(burst, tokens + (moment - last) * rate)
        wait = None if tokens >= 1.0 else (1.0 - tokens) / rate
        if count:
            self._buckets.pop(key, None)
            self._buckets[key] = (tokens - 1.0 if wait is None else tokens, moment)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class SharedBuckets:
    """Token buckets of every process of the gateway in one file: ``slots`` buckets, each key
    hashed (with the table's random salt, so nobody can aim at another's bucket) to one of a
    few slots. The table is locked whole for each request: a few microseconds, no I/O.
    A full neighbourhood forgets its least recently seen key, as the in-memory buckets do."""

    def __init__(self, path: Path, slots: int = 1 << 16) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._slots = slots
        size = _HEADER + slots * _SLOT.size
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked_file():
            if os.fstat(self._descriptor).st_size != size:  # new (or of another size): reset
                os.ftruncate(self._descriptor, 0)
                os.ftruncate(self._descriptor, size)
                os.pwrite(self._descriptor, secrets.token_bytes(16), 0)
        self._map = mmap.mmap(self._descriptor, size)
        self._salt = bytes(self._map[:16])

    def close(self) -> None:
        self._map.close()
        os.close(self._descriptor)

    async def take(
        self, key: str, rate: float, burst: float, *, count: bool, now: float | None = None
    ) -> float | None:
        """The shared bucket of ``key`` (a few microseconds under the file's lock: no thread
        hop). The clock is the machine's monotonic one, the same in every process."""
        return self.take_now(key, rate, burst, time.monotonic() if now is None else now, count)

    def take_now(
        self, key: str, rate: float, burst: float, now: float, count: bool
    ) -> float | None:
        digest = hashlib.blake2b(key.encode(), key=self._salt, digest_size=8).digest()
        wanted = int.from_bytes(digest, "little") or 1
        with self._locked_file():
            offset, tokens, last = self._slot_for(wanted, burst, now)
            tokens = min(burst, tokens + max(0.0, now - last) * rate)
            wait = None if tokens >= 1.0 else (1.0 - tokens) / rate
            if count:
                left = tokens - 1.0 if wait is None else tokens
                _SLOT.pack_into(self._map, offset, wanted, left, now)
        return wait

    def _slot_for(self, wanted: int, burst: float, now: float) -> tuple[int, float, float]:
        """The slot of ``wanted`` (offset, tokens, last), or a free or the stalest one, reset."""
        first = wanted % self._slots
        stalest_offset, stalest_last = -1, float("inf")
        for probe in range(_PROBES):
            offset = _HEADER + ((first + probe) % self._slots) * _SLOT.size
            held, tokens, last = _SLOT.unpack_from(self._map, offset)
            if held == wanted:
                return offset, tokens, last
            if held == 0:
                return offset, burst, now
            if last < stalest_last:
                stalest_offset, stalest_last = offset, last
        return stalest_offset, burst, now

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[None]:
        fcntl.lockf(self._descriptor, fcntl.LOCK_EX, 1, 0)  # held for microseconds, by anyone
        try:
            yield
        finally:
            fcntl.lockf(self._descriptor, fcntl.LOCK_UN, 1, 0)
