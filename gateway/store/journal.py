"""Group commit for the embedded claim-check store: small objects made durable a batch at a time.

Written one by one, a durable object costs a thread hop, an fsync of its file and an fsync of
its folder. Here the objects that arrive while a batch is being written wait for the next one
(a group commit, as databases make of their write-ahead log):

1. the batch is appended to this process's journal segment (``journal/*.wal``: records of name,
   time, bytes and a CRC-32) and the segment is synced, once for the whole batch: from then on
   every object of the batch survives a crash, and its writer is answered;
2. each object is then placed under its final name (an unnamed file, then linked), without a
   sync: readers find it at once, from the page cache;
3. a segment is checkpointed when it is ``SEGMENT_BYTES`` long or ``CHECKPOINT_AFTER_S`` old
   (by then the kernel has written most of its objects back: the sync is cheap), in a thread of
   its own: the objects' file system synced (``syncfs``; elsewhere than Linux each file and
   folder the segment placed), then the segment removed.

At start-up (``recover``) each segment whose writer is gone (its ``flock`` is free: a killed
process holds none) is replayed: an object missing or not whole under its name is written
again, durably, from the record; a record cut short (a batch the crash interrupted, whose writer
was never answered) ends the segment. An object deleted after its record was written is not
brought back: ``erase`` notes the name, and the time, in ``journal/erased`` (synced) before the
file goes, and a record older than that note is skipped. The notes of objects no segment can
still hold are dropped at the next recovery.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import fcntl
import os
import queue
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from gateway.store.durable import fsync_path, write_file_atomically

SEGMENT_BYTES = 64 << 20
CHECKPOINT_AFTER_S = 45.0
IDLE_END_S = 5.0  # the writer thread ends after this long with no segment and nothing to write
FEW_OBJECTS = 64  # a checkpoint of more syncs the file system at once (see _sync_placed)
BATCH_BYTES = 8 << 20  # a batch stops growing here (the records are joined in memory)
RECORD = struct.Struct(">4sQHII")  # magic, time (ns), name length, data length, CRC-32
MAGIC = b"GWJ1"
ERASED = "erased"

ERASED_MARGIN_NS = 60 * 10**9  # a record's time (when it was asked for) precedes its segment


class Placement(Protocol):
    """Where the journal's objects go: the store's files."""

    def exists(self, name: str) -> bool: ...

    def place(self, name: str, data: bytes) -> Path | None:
        """``data`` under ``name`` unless an object is there, without a sync; its path (None:
        one was there)."""
        ...

    def restore(self, name: str, data: bytes) -> bool:
        """``data`` under ``name`` with every sync, unless the same bytes are there; True if
        they had to be written."""
        ...


@dataclass
class _Pending:
    name: str
    data: bytes
    at_ns: int
    done: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


@dataclass
class _Segment:
    path: Path
    descriptor: int
    started: float
    size: int = 0
    placed: list[Path] = field(default_factory=list)


class ObjectJournal:
    """The group commit of one ``FileClaimStore`` (one writer thread, one segment at a time)."""

    def __init__(
        self,
        folder: Path,
        placement: Placement,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        checkpoint_after_s: float = CHECKPOINT_AFTER_S,
    ) -> None:
        self.folder = folder
        self._placement = placement
        self._segment_bytes = segment_bytes
        self._checkpoint_after_s = checkpoint_after_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None  # the thread that takes new writes
        self._last_writer: threading.Thread | None = None  # a new one waits for it to end
        self._segment: _Segment | None = None
        self._checkpoints: list[concurrent.futures.Future[None]] = []

    async def write(self, name: str, data: bytes) -> None:
        """Returns once ``data`` is durable in the journal and readable under ``name``."""
        pending = _Pending(name, data, time.time_ns())
        with self._lock:  # the writer thread ends only with nothing queued (``_idle_end``)
            self._queue.put(pending)
            if self._writer is None:
                self._start_writer()
        await asyncio.wrap_future(pending.done)

    def close(self) -> None:
        """(Blocking) the batches in flight written, every segment checkpointed and removed."""
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._queue.put(None)  # the writer checkpoints its segment, then ends
        if writer is not None:
            writer.join()
        concurrent.futures.wait(list(self._checkpoints))

    def _start_writer(self) -> None:
        """(Under the lock) a writer thread, which first waits for the one before to end: one
        thread at a time has the segment."""
        previous = self._last_writer
        self._writer = self._last_writer = threading.Thread(
            target=self._write_batches, args=(previous,), name="claims-journal", daemon=True
        )
        self._writer.start()

    def erase(self, name: str) -> None:
        """(Blocking) note that ``name`` is deleted now, before its file goes: a recovery
        never brings it back from an older record."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = f"{time.time_ns()} {name}\n".encode()
        with _flocked(self.folder):
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            descriptor = os.open(self.folder / ERASED, flags, 0o600)
            try:
                os.write(descriptor, line)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    # -- the writer thread

    def _write_batches(self, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()
        while True:
            try:
                first = self._queue.get(timeout=self._wait_s())
            except queue.Empty:
                self._rotate_if_due()
                if self._segment is None and self._idle_end():
                    return
                continue
            if first is None:
                self._checkpoint_segment()
                return
            batch, stop = self._gathered(first)
            self._commit(batch)
            self._rotate_if_due()
            if stop:
                self._checkpoint_segment()
                return

    def _wait_s(self) -> float:
        if self._segment is None:
            return IDLE_END_S
        return max(0.0, self._segment.started + self._checkpoint_after_s - time.monotonic())

    def _idle_end(self) -> bool:
        """True: this thread ends, nothing being queued (the next write starts another)."""
        with self._lock:
            if not self._queue.empty():
                return False
            self._writer = None
            return True

    def _gathered(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` and whatever else is waiting, up to ``BATCH_BYTES``; True: close came."""
        batch, size = [first], len(first.data)
        while size < BATCH_BYTES:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                return batch, True
            batch.append(pending)
            size += len(pending.data)
        return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if p.done.set_running_or_notify_cancel() and self._new(p)]
        if not batch:
            return
        try:
            segment = self._writable_segment()
            _append(segment, b"".join(_record(p) for p in batch))
        except Exception as exc:  # noqa: BLE001 (each writer gets it; the thread goes on)
            self._checkpoint_segment()
            for pending in batch:
                pending.done.set_exception(exc)
            return
        for pending in batch:
            try:
                placed = self._placement.place(pending.name, pending.data)
            except Exception as exc:  # noqa: BLE001 (its writer gets it; the thread goes on)
                pending.done.set_exception(exc)
                continue
            if placed is not None:
                segment.placed.append(placed)
            pending.done.set_result(None)

    def _new(self, pending: _Pending) -> bool:
        """False (and answered) when the object is there already: it is durable, or its own
        record is in a segment (this one, or another writer's)."""
        try:
            there = self._placement.exists(pending.name)
        except Exception as exc:  # noqa: BLE001 (its writer gets it; the thread goes on)
            pending.done.set_exception(exc)
            return False
        if there:
            pending.done.set_result(None)
        return not there

    def _writable_segment(self) -> _Segment:
        if self._segment is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}-{os.getpid()}-{secrets.token_hex(4)}.wal"
            path = self.folder / name
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            fsync_path(self.folder)
            self._segment = _Segment(path, descriptor, time.monotonic())
        return self._segment

    def _rotate_if_due(self) -> None:
        segment = self._segment
        if segment is None:
            return
        old = time.monotonic() - segment.started >= self._checkpoint_after_s
        if old or segment.size >= self._segment_bytes:
            self._checkpoint_segment()

    def _checkpoint_segment(self) -> None:
        """The segment checkpointed in the background; the next batch starts another. (Also
        after a failed append: the segment may end with a torn record, and no later record
        goes after it, for a recovery stops there.)"""
        segment, self._segment = self._segment, None
        if segment is not None:
            self._checkpoints = [f for f in self._checkpoints if not f.done()]
            try:
                self._checkpoints.append(_CHECKPOINTS.submit(_checkpoint, segment))
            except RuntimeError:  # the interpreter is shutting down: no new threads
                _checkpoint(segment)

    # -- recovery

    def recover(self) -> int:
        """(Blocking) replay the segments of writers that are gone; how many objects had to be
        written again."""
        if not self.folder.is_dir():
            return 0
        with _flocked(self.folder):
            erased = _erased(self.folder / ERASED)
            rewritten, alive = 0, []
            for path in sorted(self.folder.glob("*.wal")):
                with _flocked(path, wait=False) as writer_gone:
                    if not writer_gone:
                        alive.append(path)
                        continue
                    rewritten += self._replay(path, erased)
                    path.unlink()
            fsync_path(self.folder)
            _forget_erased(self.folder / ERASED, erased, _oldest(alive))
        return rewritten

    def _replay(self, path: Path, erased: dict[str, int]) -> int:
        restored = 0
        for name, at_ns, data in _records(path.read_bytes()):
            if erased.get(name, -1) < at_ns:
                restored += self._placement.restore(name, data)
        return restored


def _record(pending: _Pending) -> bytes:
    name = pending.name.encode()
    checksum = zlib.crc32(pending.data, zlib.crc32(name))
    head = RECORD.pack(MAGIC, pending.at_ns, len(name), len(pending.data), checksum)
    return head + name + pending.data


def _records(content: bytes) -> Iterator[tuple[str, int, bytes]]:
    """The whole records of a segment, up to the first one cut short or altered."""
    offset = 0
    while offset + RECORD.size <= len(content):
        magic, at_ns, name_size, data_size, checksum = RECORD.unpack_from(content, offset)
        start = offset + RECORD.size
        end = start + name_size + data_size
        if magic != MAGIC or end > len(content):
            return
        name, data = content[start : start + name_size], content[start + name_size : end]
        if zlib.crc32(data, zlib.crc32(name)) != checksum:
            return
        yield name.decode(), at_ns, data
        offset = end


def _append(segment: _Segment, records: bytes) -> None:
    written = 0
    try:
        while written < len(records):
            written += os.write(segment.descriptor, records[written:])
        _DATASYNC(segment.descriptor)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(segment.descriptor, segment.size)
        raise
    segment.size += written


def _checkpoint(segment: _Segment) -> None:
    """Every object the segment placed, and their folders, synced; then the segment removed.
    On an error the segment stays, for the next recovery to replay."""
    try:
        _sync_placed(segment.placed)
        segment.path.unlink()
    except OSError:
        pass  # left for recovery: every record in it is still whole
    finally:
        os.close(segment.descriptor)


def _sync_placed(placed: list[Path]) -> None:
    """On Linux, for more than ``FEW_OBJECTS``, one ``syncfs`` of the objects' file system
    (their data, inodes and folders, mostly written back by the kernel since); else each file
    and folder synced (a store closed soon after a few objects: the file system may hold much
    else to write, other programs' too)."""
    tops = {path.parents[2] for path in placed}  # objects/ab/cd/name: the objects folder
    if _SYNCFS is not None and len(placed) > FEW_OBJECTS:
        for top in tops:
            descriptor = os.open(top, os.O_RDONLY)
            try:
                if _SYNCFS(descriptor) != 0:
                    raise OSError(ctypes.get_errno(), "syncfs failed")
            finally:
                os.close(descriptor)
        return
    folders: set[Path] = set(tops)
    for path in placed:
        with contextlib.suppress(FileNotFoundError):  # deleted since (erase noted it)
            fsync_path(path)
        folders.update((path.parent, path.parent.parent))
    for folder in folders:
        fsync_path(folder)


def _syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


_SYNCFS = _syncfs()
_DATASYNC = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
_CHECKPOINTS = concurrent.futures.ThreadPoolExecutor(1, "claims-checkpoint")  # all journals'


@contextlib.contextmanager
def _flocked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """``path`` locked for the block (True), or False at once when another holds it and
    ``wait`` is False: a segment's live writer. The journal's folder is locked while the notes
    of erased objects are read and rewritten, or appended to (one process at a time)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)


def _erased(path: Path) -> dict[str, int]:
    """Name -> when it was last erased."""
    erased: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            at, _, name = line.partition(" ")
            if at.isdigit() and name:
                erased[name] = max(int(at), erased.get(name, 0))
    return erased


def _oldest(segments: list[Path]) -> int | None:
    """When the oldest of ``segments`` was started (ns), from its name."""
    starts = [p.name.partition("-")[0] for p in segments]
    return min((int(start) for start in starts if start.isdigit()), default=None)


def _forget_erased(path: Path, erased: dict[str, int], oldest_alive_ns: int | None) -> None:
    """Keep only the notes a live segment could still need (none once every segment is
    replayed). Written whole or not at all: a crash keeps the old notes."""
    needed_from = None if oldest_alive_ns is None else oldest_alive_ns - ERASED_MARGIN_NS
    kept = {n: at for n, at in erased.items() if needed_from is not None and at >= needed_from}
    if kept == erased:
        return
    if not kept:
        path.unlink(missing_ok=True)
        return
    write_file_atomically(path, "".join(f"{at} {name}\n" for name, at in kept.items()).encode())
