"""One holder at a time per key: ``KeyLocks``. Here the embedded one, ``FileKeyLocks``, across
the tasks and processes of one machine; across replicas, ``gateway.store.postgres.locks``.

The HTTP workers (``GATEWAY_HTTP_WORKERS``) take requests for the same idempotency key at once
when a client retries before its first request was answered: the second must wait for the
first's stored answer, in whichever process each landed. Within a process an ``asyncio.Lock``
per key orders the tasks; between processes each key owns one byte of a lock file, locked with
a POSIX record lock (``fcntl.lockf``). The kernel drops a dead process's locks, so a worker
killed mid-request never leaves a key locked.

POSIX record locks belong to the process, not the task: two keys of one process that hash to the
same byte share it, counted here so that the first to finish does not unlock the other's. Two
keys of different processes on one byte wait for each other: one in a billion pairs, a wait of
one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from gateway.errors import StateStoreError

LOCK_BYTES = 1 << 30  # byte offsets a key may hash to (a sparse file: nothing is written)
POLL_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)  # waits between tries, then the last again


class KeyLocks(Protocol):
    def holding(self, key: str, timeout_s: float = 60.0) -> AbstractAsyncContextManager[None]:
        """Hold ``key`` for the block; StateStoreError if another holder kept it past
        ``timeout_s`` (a request never takes that long: something is stuck)."""
        ...

    async def close(self) -> None: ...


class FileKeyLocks:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opened once for the process's life: closing any descriptor of the file would drop
        # every lock the process holds on it.
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._tasks: dict[str, asyncio.Lock] = {}
        self._held: dict[int, int] = {}  # byte -> keys of this process holding it

    async def close(self) -> None:
        os.close(self._descriptor)

    @contextlib.asynccontextmanager
    async def holding(self, key: str, timeout_s: float = 60.0) -> AsyncIterator[None]:
        """Hold ``key`` for the block; StateStoreError if another holder kept it past
        ``timeout_s`` (a request never takes that long: something is stuck)."""
        lock = self._tasks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                offset = _offset(key)
                await self._lock_byte(offset, timeout_s)
                try:
                    yield
                finally:
                    self._unlock_byte(offset)
        finally:
            if not lock.locked() and not lock._waiters:
                self._tasks.pop(key, None)

    async def _lock_byte(self, offset: int, timeout_s: float) -> None:
        if self._held.get(offset):
            self._held[offset] += 1
            return
        loop = asyncio.get_running_loop()
        deadline, attempt = loop.time() + timeout_s, 0
        while True:
            try:
                fcntl.lockf(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except BlockingIOError:
                if loop.time() > deadline:
                    raise StateStoreError("a request with this key is still running") from None
                await asyncio.sleep(POLL_S[min(attempt, len(POLL_S) - 1)])
                attempt += 1
            except OSError as exc:
                raise StateStoreError(f"key lock: {exc}") from exc
            else:  # another key of this process may have taken the byte while this one waited
                self._held[offset] = self._held.get(offset, 0) + 1
                return

    def _unlock_byte(self, offset: int) -> None:
        self._held[offset] -= 1
        if not self._held[offset]:
            del self._held[offset]
            fcntl.lockf(self._descriptor, fcntl.LOCK_UN, 1, offset)


def _offset(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOCK_BYTES
