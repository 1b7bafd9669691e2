"""Scanned postal mail: a folder the mail room's scanner writes to -> complaints.

The inbox (``GATEWAY_POSTAL_INBOX``) is watched with inotify (watchfiles) and rescanned every
``rescan_s`` so nothing is missed. A file is taken once its size and time stopped changing for
``settle_s`` (the scanner finished writing it); hidden and partial files (``.part``, ``.tmp``,
``~``) are left alone. For each file:

1. the original goes to the claim-check store (SHA-256): the events point to it;
2. the OCR engine reads every page (text layers as they are), a batch is cut into letters at
   separator sheets (``gateway.ocr.letters``), and each letter gets a searchable PDF (its pages
   with the text read laid over them), attached beside the original;
3. each letter becomes a ``complaint.received`` (or ``complaint.document_added`` when it quotes
   a reference), flagged ``low_ocr_confidence`` under ``min_confidence``; its source key is the
   file's SHA-256 (and the letter's rank in a batch), so a file read again after a crash gives
   the same events;
4. only once Kafka has every letter's event does the file move to ``processed/<date>/``; a
   corrupt, encrypted, empty or unsupported file moves to ``quarantine/`` with an
   ``intake.dlq.v1`` record. Nothing is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog
import watchfiles
from prometheus_client import Counter

from gateway.channels.raw import RawMessage
from gateway.errors import RETRY_LATER, InputRejected, UnreadableDocument
from gateway.events.common import Attachment, Channel
from gateway.events.complaint import Flag
from gateway.intake import Intake
from gateway.ocr import OcrEngine
from gateway.ocr.documents import MEDIA_TYPES
from gateway.ocr.letters import ReadLetter, split_letters
from gateway.settings import PostalSettings
from gateway.store.claims import ClaimStore, StoredObject
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

PROCESSED = "processed"
QUARANTINE = "quarantine"
SOURCE = "urn:intake-gateway:postal"
LETTERS = Counter("gateway_postal_letters_total", "Letters read from scans", ["outcome"])


@dataclass(frozen=True)
class Seen:
    size: int
    mtime_ns: int
    since: float


class PostalChannel:
    name = "postal"

    def __init__(
        self,
        settings: PostalSettings,
        intake: Intake,
        claims: ClaimStore,
        state: StateStore,
        engine: OcrEngine,
    ) -> None:
        if settings.inbox is None:
            raise ValueError("the postal channel needs an inbox folder")
        self._settings = settings
        self._inbox = settings.inbox
        self._intake = intake
        self._claims = claims
        self._state = state
        self._engine = engine
        self._seen: dict[Path, Seen] = {}
        self._busy: set[Path] = set()
        self._slots = asyncio.Semaphore(self.files_at_once)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def files_at_once(self) -> int:
        """One file more than the OCR engine reads pages at once: while a file's tail is done
        here (searchable PDF, normalizers, Kafka, move), the next file's pages keep every OCR
        process busy (with as many files as processes, one sat idle for each file's tail)."""
        return self._engine.pages_at_once + 1

    async def run(self) -> None:
        """Watch the inbox until cancelled; a file whose turn fails is tried again later."""
        for folder in (self._inbox, self._inbox / PROCESSED, self._inbox / QUARANTINE):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            await self.scan()
            timeout_ms = int(min(self._settings.rescan_s, max(self._settings.settle_s, 0.2)) * 1000)
            async for _ in watchfiles.awatch(
                self._inbox, recursive=False, rust_timeout=timeout_ms, yield_on_timeout=True
            ):
                await self.scan()
        finally:
            await self._drain()
            self._engine.close()

    async def scan(self) -> None:
        """Start a task for each file that finished arriving and is not being read."""
        now = asyncio.get_running_loop().time()
        for path in await asyncio.to_thread(self._candidates):
            if path not in self._busy and self._settled(path, now):
                self._busy.add(path)
                task = asyncio.create_task(self._take(path))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _candidates(self) -> list[Path]:
        return sorted(
            path for path in self._inbox.iterdir() if path.is_file() and not _partial(path.name)
        )

    def _settled(self, path: Path, now: float) -> bool:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._seen.pop(path, None)
            return False
        previous = self._seen.get(path)
        if previous is None or (previous.size, previous.mtime_ns) != (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            self._seen[path] = Seen(stat.st_size, stat.st_mtime_ns, now)
            return self._settings.settle_s == 0
        return now - previous.since >= self._settings.settle_s

    async def _take(self, path: Path) -> None:
        try:
            async with self._slots:
                await self.process(path)
        except RETRY_LATER as exc:
            log.warning("postal.retry_later", file=path.name, error=str(exc))
        except Exception:
            log.exception("postal.failed", file=path.name)
        finally:
            self._busy.discard(path)
            self._seen.pop(path, None)

    async def process(self, path: Path) -> str:
        """Read one file into events; returns the folder it moved to."""
        original = await self._claims.put(await asyncio.to_thread(path.read_bytes))
        received = datetime.fromtimestamp((await asyncio.to_thread(path.stat)).st_mtime, UTC)
        try:
            letters = await self.read_letters(path)
        except UnreadableDocument as exc:
            await self._reject(path, original, received, exc.reason_code, exc.reason)
            return QUARANTINE
        for rank, letter in enumerate(letters, start=1):
            await self._publish_once(path, original, received, letter, rank, len(letters))
        await asyncio.to_thread(_move, path, self._inbox / PROCESSED / received.date().isoformat())
        log.info("postal.processed", file=path.name, letters=len(letters), sha256=original.sha256)
        return PROCESSED

    async def read_letters(self, path: Path) -> list[ReadLetter]:
        """The letters of a scan; ``UnreadableDocument`` (why) when it has none: corrupt,
        encrypted, empty or not a scan, or no page with text."""
        try:
            pages = await self._engine.read(path)
        except UnreadableDocument:
            raise
        except Exception as exc:  # no reader survives this file: kept, reported, not retried
            log.exception("postal.read_failed", file=path.name)
            reason = f"the file could not be read: {type(exc).__name__}: {exc}"
            raise UnreadableDocument("unreadable_document", reason) from exc
        letters = split_letters(pages, self._settings.split_on_blank)
        if not letters:
            raise UnreadableDocument("no_text", "no page carries any text")
        return letters

    async def letter_messages(
        self,
        path: Path,
        original: StoredObject,
        received: datetime,
        letters: list[ReadLetter],
        key: str,
    ) -> list[RawMessage]:
        """Each letter of a scan as the ``RawMessage`` this channel publishes, its source key
        ``key`` (``key:rank`` in a batch): what a DLQ redrive publishes."""
        count, messages = len(letters), []
        for rank, letter in enumerate(letters, start=1):
            searchable = await self._searchable_copy(path, original, letter, rank, count)
            source_key = letter_key(key, rank, count)
            messages.append(
                self._raw_letter(path, original, received, letter, source_key, searchable)
            )
        return messages

    async def _publish_once(
        self,
        path: Path,
        original: StoredObject,
        received: datetime,
        letter: ReadLetter,
        rank: int,
        count: int,
    ) -> None:
        source_key = letter_key(f"postal:{original.sha256}", rank, count)
        if await self._state.processed_event(source_key) is not None:
            return  # published before a crash
        searchable = await self._searchable_copy(path, original, letter, rank, count)
        raw = self._raw_letter(path, original, received, letter, source_key, searchable)
        try:
            event = await self._intake.submit(raw)
        except InputRejected:
            LETTERS.labels("rejected").inc()
            return
        await self._state.mark_processed(source_key, event.id)
        LETTERS.labels("published").inc()

    async def _searchable_copy(
        self, path: Path, original: StoredObject, letter: ReadLetter, rank: int, count: int
    ) -> Attachment | None:
        """The letter's pages as a searchable PDF, kept in the claim-check store."""
        pdf = await self._engine.searchable_pdf(path, letter.pages)
        if pdf is None:
            return None
        stored = await self._claims.put(pdf)
        name = f"{path.stem}-letter-{rank}" if count > 1 else path.stem
        return Attachment(
            filename=f"{name}.searchable.pdf",
            media_type="application/pdf",
            size=stored.size,
            sha256=stored.sha256,
            uri=stored.uri,
            derived_from=original.sha256,
        )

    def _raw_letter(
        self,
        path: Path,
        original: StoredObject,
        received: datetime,
        letter: ReadLetter,
        source_key: str,
        searchable: Attachment | None,
    ) -> RawMessage:
        confidence = letter.confidence
        flags = set()
        if confidence is not None and confidence < self._settings.min_confidence:
            flags.add(Flag.LOW_OCR_CONFIDENCE)
        pages = [page.number for page in letter.pages]
        scan = Attachment(
            filename=path.name,
            media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            size=original.size,
            sha256=original.sha256,
            uri=original.uri,
        )
        return RawMessage(
            channel=Channel.POSTAL,
            source_key=source_key,
            source_id=f"{original.sha256}#pages={pages[0]}-{pages[-1]}",
            received_at=received,
            text=letter.text,
            attachments=(scan, searchable) if searchable else (scan,),
            raw_uri=original.uri,
            flags=frozenset(flags),
            source=SOURCE,
        )

    async def _reject(
        self, path: Path, original: StoredObject, received: datetime, code: str, reason: str
    ) -> None:
        raw = RawMessage(
            channel=Channel.POSTAL,
            source_key=f"postal:{original.sha256}",
            source_id=path.name,
            received_at=received,
            raw_uri=original.uri,
            source=SOURCE,
        )
        await self._intake.reject(raw, code, reason, {"file": path.name})
        await asyncio.to_thread(_move, path, self._inbox / QUARANTINE)
        LETTERS.labels("quarantined").inc()
        log.warning("postal.quarantined", file=path.name, reason_code=code)

    async def _drain(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def letter_key(key: str, rank: int, count: int) -> str:
    """The source key of a scan's letter: the scan's, and its rank in a batch."""
    return key + (f":{rank}" if count > 1 else "")


def _partial(name: str) -> bool:
    """Hidden files and files still being written under a temporary name. Anything else is
    read, and a type that is not a scan goes to quarantine with a reason."""
    return name.startswith(".") or name.endswith(("~", ".part", ".tmp", ".crdownload"))


def _move(path: Path, folder: Path) -> None:
    """Into ``folder``, never over another file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    shutil.move(path, target)
