"""What an encrypting store needs of the store under it: bytes kept under a name it chooses.

A ``ClaimStore`` names an object by the SHA-256 of the bytes it is given. An encrypted object
is kept under the SHA-256 of its *plaintext*, which the stored bytes (the ciphertext) do not
hash to, and which is known only once the whole stream was read. ``BlobStore`` is the part of
a claim store that allows that: an ``upload`` written as it comes and committed under a name
given at the end, and reads of the bytes as stored (not checked: the encrypting store checks
its chunks and the plaintext's hash). ``FileClaimStore`` and ``S3ClaimStore`` implement both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Protocol

from gateway.store.reading import check_range, file_chunks

if TYPE_CHECKING:
    from gateway.store.claims import FileClaimStore


class BlobUpload(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def commit(self, name: str) -> None:
        """Keep what was written under ``name`` (an object already there may be kept instead:
        written under its name, it holds the same plaintext)."""
        ...

    async def abort(self) -> None:
        """Nothing of it is kept (idempotent, also after a failed commit)."""
        ...


class BlobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def upload(self) -> BlobUpload: ...

    def read_blob(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The stored bytes ``start`` to ``end`` as they are (ClaimNotFound if none)."""
        ...

    async def exists(self, name: str) -> bool: ...

    async def size(self, name: str) -> int: ...

    async def delete(self, name: str) -> None: ...

    def uri_of(self, name: str) -> str: ...


class FileUpload:
    """Held in memory up to ``in_memory`` bytes (one thread hop to store, as most objects are
    small), beyond that written to a temp file of the store as it comes."""

    def __init__(self, store: FileClaimStore, in_memory: int) -> None:
        self._store = store
        self._in_memory = in_memory
        self._held: list[bytes] = []
        self._size = 0
        self._temp: IO[bytes] | None = None

    async def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._temp is None:
            self._held.append(data)
            if self._size <= self._in_memory:
                return
            self._temp = await asyncio.to_thread(self._store.open_temp)
            data, self._held = b"".join(self._held), []
        await asyncio.to_thread(self._store.write_temp, self._temp, data)

    async def commit(self, name: str) -> None:
        if self._temp is None:
            data, self._held = b"".join(self._held), []
            await self._store.store_small(name, data)
            return
        temp, self._temp = self._temp, None
        await asyncio.to_thread(self._store.commit_temp, temp, name)

    async def abort(self) -> None:
        self._held = []
        temp, self._temp = self._temp, None
        if temp is not None:
            await asyncio.to_thread(self._store.discard_temp, temp)


async def file_blob(
    store: FileClaimStore, name: str, start: int, end: int | None
) -> AsyncIterator[bytes]:
    """A stored file's bytes, as they are."""
    check_range(start, end)
    stored = await asyncio.to_thread(store.open_stored, name)
    try:
        size = await asyncio.to_thread(lambda: stored.seek(0, 2))
        async for chunk in file_chunks(stored, start, size if end is None else min(end, size)):
            yield chunk
    finally:
        stored.close()
