"""Reading stored objects back, for every claim-check store: byte ranges, chunks as they come,
and the check of an object read whole against the SHA-256 it is stored under."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import BinaryIO

from gateway.errors import ClaimStoreError

READ_BYTES = 1 << 20  # what ``read`` yields at a time
DIGEST_BLOCK_BYTES = 1 << 18  # read at a time to hash a whole file


class ObjectAltered(ClaimStoreError):
    """The stored bytes no longer hash to their address: changed behind the store's back."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"object {sha256} no longer matches its SHA-256: altered in the store")
        self.sha256 = sha256


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"invalid byte range {start}:{end}")


async def verified(sha256: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` of a whole object, each passed on once the next was read and the last once
    their SHA-256 matched ``sha256``: an altered object is never handed over whole."""
    digest, held = hashlib.sha256(), b""
    async for chunk in chunks:
        digest.update(chunk)
        if held:
            yield held
        held = chunk
    if digest.hexdigest() != sha256:
        raise ObjectAltered(sha256)
    if held:
        yield held


async def file_chunks(stored: BinaryIO, start: int, stop: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``stop`` of an open file, read in a thread ``READ_BYTES`` at a time."""

    def next_chunk(size: int) -> bytes:
        try:
            return stored.read(size)
        except OSError as exc:
            raise ClaimStoreError(f"claim-check store I/O error: {exc.strerror or exc}") from exc

    stored.seek(start)
    position = start
    while position < stop:
        chunk = await asyncio.to_thread(next_chunk, min(READ_BYTES, stop - position))
        if not chunk:
            return
        position += len(chunk)
        yield chunk


def file_digest(stored: BinaryIO) -> str:
    """The SHA-256 (hex) of an open file from its start (blocking)."""
    digest = hashlib.sha256()
    try:
        stored.seek(0)
        while block := stored.read(DIGEST_BLOCK_BYTES):
            digest.update(block)
    except OSError as exc:
        raise ClaimStoreError(f"claim-check store I/O error: {exc.strerror or exc}") from exc
    return digest.hexdigest()
