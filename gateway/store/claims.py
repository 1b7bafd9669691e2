"""Claim-check store for raw inputs and attachments: bytes never travel in events.

``ClaimStore`` is the protocol; ``FileClaimStore`` the embedded default on the local file system
under ``GATEWAY_DATA_DIR/objects``; ``gateway.store.s3.S3ClaimStore`` the same protocol on an
S3-compatible object store (``gateway.store.objects`` chooses one from the settings). Objects are
content-addressed by SHA-256 (storing the same bytes twice is one object) and written atomically,
so a crash never leaves a half-written object under its final name: here an object of up to
``IN_MEMORY_BYTES`` (most raw inputs) is made durable by the journal's group commit, a batch of
them at a time (``gateway.store.journal``), and placed under its name by a link; a larger one is
streamed to a temp file, synced, renamed, and its folder synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, Protocol, Self, TypeVar

import structlog

from gateway.errors import ClaimNotFound, ClaimStoreError, ClaimStoreFull, ConfigurationError
from gateway.store.blobs import FileUpload, file_blob
from gateway.store.durable import fsync_path
from gateway.store.journal import ObjectJournal
from gateway.store.reading import ObjectAltered, check_range, file_chunks, file_digest, verified

CHUNK_SIZE = 1 << 16
IN_MEMORY_BYTES = 256 * 1024  # a stream up to this is stored in one thread hop (see put_stream)
T = TypeVar("T")
log = structlog.get_logger(__name__)


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
    """Where raw inputs and attachments are kept, by the SHA-256 (hex) of their bytes.

    Implementations are safe to call concurrently and never expose a partially written object:
    a reader sees an object whole or not at all, and concurrent puts of the same bytes make one
    object. An object read whole (``get``, ``spool``, ``read`` of every byte) is checked against
    its hash: altered bytes raise ``ObjectAltered`` and are never handed over whole. Unknown
    objects raise ``ClaimNotFound``; every other fault is a ``ClaimStoreError`` (never the
    backend's own exceptions). ``open`` before use, ``close`` after (or ``async with``).
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, data: bytes) -> StoredObject:
        """Store ``data``; returns its address. Idempotent for the same bytes."""
        ...

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        """Store a stream without holding it in memory; past ``max_size`` bytes ObjectTooLarge,
        and nothing of it is kept."""
        ...

    async def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``, checked against it."""
        ...

    async def exists(self, sha256: str) -> bool: ...

    async def size(self, sha256: str) -> int:
        """How many bytes are stored under ``sha256``."""
        ...

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start`` to ``end`` (excluded; None: to the end) as they are read, for an
        HTTP Range (``bytes=a-b`` is ``start=a, end=b + 1``); a range past the end is cut there
        (as a slice is). Read whole, the object is checked as it streams: the last chunk comes
        only once the hash matched, else ``ObjectAltered``. A part of it cannot be checked."""
        ...

    def spool(self, sha256: str) -> AbstractAsyncContextManager[BinaryIO]:
        """A local file of the object (checked), to read with blocking calls in a thread while
        the context is open: the stored file itself, or a temp copy removed on exit."""
        ...

    async def delete(self, sha256: str) -> None:
        """Remove the object; nothing happens when there is none."""
        ...

    def uri_of(self, sha256: str) -> str:
        """Where an event says the object is (``file://...``, ``s3://bucket/...``)."""
        ...


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
        self._journal = ObjectJournal(self.root / "journal", _JournalPlacement(self))

    async def open(self) -> None:
        """The journals of writers that are gone replayed: every object they answered for is
        whole under its name."""
        try:
            restored = await asyncio.to_thread(self._journal.recover)
        except OSError as exc:
            raise _map_os_error(exc) from exc
        if restored:
            log.warning("claims.objects_restored_from_journal", objects=restored)

    async def close(self) -> None:
        """The journal's last batches written and checkpointed."""
        try:
            await asyncio.to_thread(self._journal.close)
        except OSError as exc:
            raise _map_os_error(exc) from exc

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def check(self) -> None:
        """At start-up: the objects folder can be created and written (ConfigurationError)."""
        try:
            await asyncio.to_thread(self._check_writable)
        except OSError as exc:
            raise ConfigurationError(
                f"GATEWAY_DATA_DIR: cannot write objects under {self._objects}: "
                f"{exc.strerror or exc}"
            ) from exc

    def _check_writable(self) -> None:
        self._objects.mkdir(parents=True, exist_ok=True)
        if not os.access(self._objects, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable")

    def path_of(self, sha256: str) -> Path:
        return self._objects / sha256[:2] / sha256[2:4] / sha256

    def uri_of(self, sha256: str) -> str:
        return self.path_of(sha256).as_uri()

    async def put(self, data: bytes) -> StoredObject:
        if len(data) > IN_MEMORY_BYTES:
            return await asyncio.to_thread(self._put_bytes, data)
        sha256 = hashlib.sha256(data).hexdigest()
        await self.store_small(sha256, data)
        return StoredObject(sha256, len(data), self.uri_of(sha256))

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        """Store what ``chunks`` yield, never more than ``IN_MEMORY_BYTES`` held at once. A
        stream that ends within that (most submissions, mails, letters) goes through the
        journal, like ``put``; a longer one is written to a temp file as it comes."""
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
            sha256 = digest.hexdigest()
            await self.store_small(sha256, b"".join(head))
            return StoredObject(sha256, size, self.uri_of(sha256))
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
        data = await asyncio.to_thread(self._read_bytes, sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ObjectAltered(sha256)
        return data

    async def exists(self, sha256: str) -> bool:
        """Whether the object is there: one ``stat``, on the event loop's thread. Its folder
        holds few names (two levels of hash prefixes) and is looked up in the kernel's cache:
        microseconds, where a hop to a thread cost a web submission ~0.1 ms of CPU and two
        context switches (6% of the webhook's samples at saturation, ``bench/flame.py``)."""
        return self.path_of(sha256).is_file()

    async def size(self, sha256: str) -> int:
        return await asyncio.to_thread(lambda: _stored(self.path_of(sha256), Path.stat).st_size)

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        stored = await asyncio.to_thread(_stored, self.path_of(sha256), _open_binary)
        try:
            size = os.fstat(stored.fileno()).st_size
            stop = size if end is None else min(end, size)
            chunks = file_chunks(stored, start, stop)
            if start == 0 and stop == size:
                chunks = verified(sha256, chunks)
            async for chunk in chunks:
                yield chunk
        finally:
            stored.close()

    @contextlib.asynccontextmanager
    async def spool(self, sha256: str) -> AsyncIterator[BinaryIO]:
        """The stored file itself, once its bytes were checked against their hash."""
        stored = await asyncio.to_thread(_stored, self.path_of(sha256), _open_binary)
        try:
            digest = await asyncio.to_thread(file_digest, stored)
            if digest != sha256:
                raise ObjectAltered(sha256)
            stored.seek(0)
            yield stored
        finally:
            stored.close()

    async def delete(self, sha256: str) -> None:
        try:
            await asyncio.to_thread(self._delete, sha256)
        except OSError as exc:
            raise _map_os_error(exc) from exc

    def _delete(self, name: str) -> None:
        self._journal.erase(name)  # first: no recovery brings it back
        self.path_of(name).unlink(missing_ok=True)

    async def store_small(self, name: str, data: bytes) -> None:
        """``data`` (at most ``IN_MEMORY_BYTES``) durable under ``name`` (unless an object is
        there already), by the journal's group commit."""
        try:
            await self._journal.write(name, data)
        except OSError as exc:
            raise _map_os_error(exc) from exc

    # -- as a BlobStore (``gateway.store.blobs``, for the encrypting store): named bytes

    def upload(self) -> FileUpload:
        return FileUpload(self, IN_MEMORY_BYTES)

    def read_blob(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return file_blob(self, name, start, end)

    def open_stored(self, name: str) -> BinaryIO:
        return _stored(self.path_of(name), _open_binary)

    def open_temp(self) -> IO[bytes]:
        return self._open_temp()

    def write_temp(self, temp: IO[bytes], data: bytes) -> None:
        _write(temp, data)

    def commit_temp(self, temp: IO[bytes], name: str) -> None:
        """The temp file under ``name``, unless an object is there already (linked, not
        renamed: of two writers of one name, the first stays whole for its readers)."""
        final = self.path_of(name)
        try:
            temp.flush()
            os.fsync(temp.fileno())
            temp.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(temp.name, final)
                fsync_path(final.parent)
        except OSError as exc:
            raise _map_os_error(exc) from exc
        finally:
            _discard(temp)

    def discard_temp(self, temp: IO[bytes]) -> None:
        _discard(temp)

    def _read_bytes(self, sha256: str) -> bytes:
        return _stored(self.path_of(sha256), Path.read_bytes)

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
            fsync_path(final.parent)
        except OSError as exc:
            _discard(temp)
            raise _map_os_error(exc) from exc
        return StoredObject(sha256, size, self.uri_of(sha256))


class _JournalPlacement:
    """The journal's objects as the store's files (``gateway.store.journal.Placement``)."""

    def __init__(self, store: FileClaimStore) -> None:
        self._store = store

    def exists(self, name: str) -> bool:
        return self._store.path_of(name).is_file()

    def place(self, name: str, data: bytes) -> Path | None:
        """``data`` under ``name``, seen whole or not at all. Where the system has them, an
        unnamed file in the object's own folder (``O_TMPFILE``), then linked: a named temp
        file, created and then unlinked for each object, cost 8% of the web service's CPU
        at saturation on ext4, whose allocation of each new file scanned past the inodes
        freed just before (``perf``: ``recently_deleted`` under ``openat``)."""
        final = self._store.path_of(name)
        try:
            if _UNNAMED_FILES:
                with contextlib.suppress(_NoUnnamedFiles):
                    _with_folder(final, lambda: _link_unnamed(final, data))
                    return final
            temp = self._store._incoming / f"put-{os.getpid()}-{secrets.token_hex(8)}"
            _with_folder(temp, lambda: _write_new(temp, data))
            try:
                _with_folder(final, lambda: os.link(temp, final))
            finally:
                temp.unlink()
        except FileExistsError:
            return None
        return final

    def restore(self, name: str, data: bytes) -> bool:
        with contextlib.suppress(FileNotFoundError):
            if self._store.path_of(name).read_bytes() == data:
                return False
        temp = self._store._open_temp()
        _write(temp, data)
        self._store._commit(temp, name, len(data))
        return True


def _with_folder(path: Path, action: Callable[[], None]) -> None:
    """``action``, once more after creating ``path``'s folder if it was missing."""
    try:
        action()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        action()


def _write_new(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(descriptor, data)
    finally:
        os.close(descriptor)


# Linux's unnamed files, where /proc lets one be linked without privileges.
_UNNAMED_FILES = hasattr(os, "O_TMPFILE") and Path("/proc/self/fd").is_dir()


class _NoUnnamedFiles(Exception):
    """This file system has no ``O_TMPFILE``: a named temp file instead."""


def _link_unnamed(final: Path, data: bytes) -> None:
    """``data`` in an unnamed file of ``final``'s folder, then linked as ``final``
    (``FileExistsError`` if it is there already)."""
    folder = os.open(final.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        try:
            descriptor = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600, dir_fd=folder)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise _NoUnnamedFiles from exc
            raise
        try:
            _write_all(descriptor, data)
            # linkat(AT_SYMLINK_FOLLOW): given a folder, os.link calls linkat, else link(2),
            # which would link /proc's symbolic link itself (EXDEV).
            os.link(f"/proc/self/fd/{descriptor}", final.name, dst_dir_fd=folder)
        finally:
            os.close(descriptor)
    finally:
        os.close(folder)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _check_size(size: int, max_size: int | None) -> None:
    if max_size is not None and size > max_size:
        raise ObjectTooLarge(max_size, size)


def _stored(path: Path, action: Callable[[Path], T]) -> T:
    """``action`` on a stored object's path, its errors as the store's."""
    try:
        return action(path)
    except FileNotFoundError:
        raise ClaimNotFound(f"no object {path.name}") from None
    except OSError as exc:
        raise _map_os_error(exc) from exc


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


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
