"""Rate limits per client address, per form, per phone number...: token buckets.

Each key gets ``limit`` requests per window (a minute unless told), in bursts of up to that
many. One process keeps its buckets in memory; the least recently seen keys are forgotten past
``max_keys`` so an address scan cannot grow memory without bound. Several HTTP workers share
one table of buckets (``SharedBuckets``: a memory-mapped file under the data folder), or a
client spreading its connections over the workers would get each worker's allowance.
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

_SLOT = struct.Struct("<Qdd")  # key hash (0: free), tokens, time of the last request
_HEADER = 64  # the salt of the key hashes (random per table), then room to spare
_PROBES = 8  # slots looked at for a key before the least recently used is taken over


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

    def take(
        self, key: str, rate: float, burst: float, now: float, *, count: bool = True
    ) -> float | None:
        """``RateLimiter.retry_after`` on the shared bucket of ``key`` (``count``: take a token
        when there is one; else only look)."""
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


class RateLimiter:
    """``shared``: the buckets of every HTTP worker, ``name`` telling this limiter's keys
    from another's there; without it, buckets in this process's memory."""

    def __init__(
        self,
        limit: int,
        max_keys: int = 100_000,
        window_s: float = 60.0,
        shared: SharedBuckets | None = None,
        name: str = "",
    ) -> None:
        self._rate = limit / window_s
        self._burst = float(limit)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._shared = shared
        self._name = name

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """None when the request may go on (and counts it), else seconds to wait."""
        return self._take(key, now, count=True)

    def exhausted(self, key: str, now: float | None = None) -> float | None:
        """Seconds to wait when ``key`` has no allowance left, else None; counts nothing."""
        return self._take(key, now, count=False)

    def _take(self, key: str, now: float | None, *, count: bool) -> float | None:
        moment = time.monotonic() if now is None else now  # one clock for every process
        if self._shared is not None:
            shared_key = f"{self._name}\n{key}"
            return self._shared.take(shared_key, self._rate, self._burst, moment, count=count)
        tokens, last = self._buckets.get(key, (self._burst, moment))
        tokens = min(self._burst, tokens + (moment - last) * self._rate)
        wait = None if tokens >= 1.0 else (1.0 - tokens) / self._rate
        if count:
            self._buckets.pop(key, None)
            self._remember(key, tokens - 1.0 if wait is None else tokens, moment)
        return wait

    def _remember(self, key: str, tokens: float, moment: float) -> None:
        self._buckets[key] = (tokens, moment)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
