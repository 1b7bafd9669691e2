"""Claim-check store for raw inputs and attachments: bytes never travel in events.

``ClaimStore`` is the protocol; ``FileClaimStore`` the embedded default on the local file system
under ``GATEWAY_DATA_DIR/objects``. Objects are content-addressed by SHA-256 (storing the same
bytes twice is one object) and written atomically: temp file, fsync, rename, fsync of the folder,
so a crash never leaves a half-written object under its final name. An S3-compatible store
implements the same protocol (``put`` as a PUT of the object under its hash, ``uri`` s3://...).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from gateway.errors import ClaimNotFound, ClaimStoreError, ClaimStoreFull

CHUNK_SIZE = 1 << 16
IN_MEMORY_BYTES = 256 * 1024  # a stream up to this is stored in one thread hop (see put_stream)


@dataclass(frozen=True)
class StoredObject:
    """What an event carries about stored bytes: their hash, size and where to fetch them."""

    sha256: str
    size: int
    uri: str


class ObjectTooLarge(ClaimStoreError):
    """The object went over the caller's size limit; nothing was kept."""

    def __init__(self, limit: int, seen: int) -> None:
        super().__init__(f"object larger than the limit of {limit} bytes")
        self.limit = limit
        self.seen = seen


class ClaimStore(Protocol):
    """Where raw inputs and attachments are kept. Implementations must be safe to call
    concurrently and must never expose a partially written object."""

    async def put(self, data: bytes) -> StoredObject:
        """Store ``data``; returns its address. Idempotent for the same bytes."""
        ...

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        """Store a stream without holding it in memory; ObjectTooLarge past ``max_size``."""
        ...

    async def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; ClaimNotFound if none."""
        ...

    def open_stored(self, sha256: str) -> BinaryIO:
        """The stored object as a file, to read piece by piece (blocking: call it, and read,
        in a thread); ClaimNotFound if none."""
        ...

    async def exists(self, sha256: str) -> bool: ...


def _map_os_error(exc: OSError) -> ClaimStoreError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ClaimStoreFull("claim-check store is full (no space left on device)")
    return ClaimStoreError(f"claim-check store I/O error: {exc.strerror or exc}")


class FileClaimStore:
    """Content-addressed files under ``root``: ``objects/ab/cd/abcd...`` (SHA-256 hex)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()  # once: URIs are absolute, and no path walk per object
        self._objects = self.root / "objects"
        self._incoming = self.root / "incoming"

    def path_of(self, sha256: str) -> Path:
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def uri_of(self, sha256: str) -> str:
        return self.path_of(sha256).as_uri()

    async def put(self, data: bytes) -> StoredObject:
        return await asyncio.to_thread(self._put_bytes, data)

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        """Store what ``chunks`` yield, never more than ``IN_MEMORY_BYTES`` held at once. A
        stream that ends within that (most submissions, mails, letters) is stored in one thread
        hop, like ``put``; a longer one is written to a temp file as it comes."""
        head: list[bytes] = []
        digest, size = hashlib.sha256(), 0
        stream = aiter(chunks)
        async for chunk in stream:
            size += len(chunk)
            _check_size(size, max_size)
            digest.update(chunk)
            head.append(chunk)
            if size > IN_MEMORY_BYTES:
                break
        else:
            data = b"".join(head)
            return await asyncio.to_thread(self._put_known, data, digest.hexdigest())
        temp = await asyncio.to_thread(self._open_temp)
        try:
            await asyncio.to_thread(_write, temp, b"".join(head))
            del head
            async for chunk in stream:
                size += len(chunk)
                _check_size(size, max_size)
                digest.update(chunk)
                await asyncio.to_thread(_write, temp, chunk)
            return await asyncio.to_thread(self._commit, temp, digest.hexdigest(), size)
        except BaseException:
            await asyncio.to_thread(_discard, temp)
            raise

    async def get(self, sha256: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path_of(sha256).read_bytes)
        except FileNotFoundError:
            raise ClaimNotFound(f"no object {sha256}") from None
        except OSError as exc:
            raise _map_os_error(exc) from exc

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path_of(sha256).is_file)

    def open_stored(self, sha256: str) -> BinaryIO:
        try:
            return self.path_of(sha256).open("rb")
        except FileNotFoundError:
            raise ClaimNotFound(f"no object {sha256}") from None
        except OSError as exc:
            raise _map_os_error(exc) from exc

    def _put_bytes(self, data: bytes) -> StoredObject:
        return self._put_known(data, hashlib.sha256(data).hexdigest())

    def _put_known(self, data: bytes, sha256: str) -> StoredObject:
        if self.path_of(sha256).is_file():
            return StoredObject(sha256, len(data), self.uri_of(sha256))
        temp = self._open_temp()
        try:
            _write(temp, data)
            return self._commit(temp, sha256, len(data))
        except BaseException:
            _discard(temp)
            raise

    def _open_temp(self) -> IO[bytes]:
        try:
            self._incoming.mkdir(parents=True, exist_ok=True)
            return tempfile.NamedTemporaryFile(dir=self._incoming, prefix="put-", delete=False)
        except OSError as exc:
            raise _map_os_error(exc) from exc

    def _commit(self, temp: IO[bytes], sha256: str, size: int) -> StoredObject:
        final = self.path_of(sha256)
        try:
            temp.flush()
            os.fsync(temp.fileno())
            temp.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            Path(temp.name).replace(final)
            _fsync_dir(final.parent)
        except OSError as exc:
            _discard(temp)
            raise _map_os_error(exc) from exc
        return StoredObject(sha256, size, self.uri_of(sha256))


def _check_size(size: int, max_size: int | None) -> None:
    if max_size is not None and size > max_size:
        raise ObjectTooLarge(max_size, size)


def _write(temp: IO[bytes], chunk: bytes) -> None:
    try:
        temp.write(chunk)
    except OSError as exc:
        raise _map_os_error(exc) from exc


def _discard(temp: IO[bytes]) -> None:
    """Close and remove a temp file whatever happens: on a full disk, closing tries once more
    to write the buffered bytes and fails again (that error is the one already reported)."""
    try:
        temp.close()
    except OSError:
        pass  # the bytes are being thrown away; the file descriptor is closed all the same
    finally:
        Path(temp.name).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file_atomically(path: Path, content: bytes, mode: int = 0o600) -> None:
    """``path`` holds ``content`` whole or not at all (temp file, fsync, rename, folder fsync):
    a reader (the mail room, a developer) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as temp:
        temp.write(content)
        temp.flush()
        os.fsync(temp.fileno())
    Path(temp.name).chmod(mode)
    Path(temp.name).replace(path)
    _fsync_dir(path.parent)
