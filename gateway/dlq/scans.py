"""Redriving a quarantined scan: read again by the postal channel's own code (OCR engine, letters,
searchable PDFs), then moved from ``quarantine/`` to ``processed/<date>/`` in the inbox.

Which copy is read: the file of the record's name in the inbox's ``quarantine/`` folder when
there is one (the mail room may have put a corrected scan there, under the same name), else
the raw copy kept in the claim-check store. The events keep the record's source key (the first
file's SHA-256; ``:rank`` for each letter of a batch), so a redrive publishes under the event
ids the scan would have had, whichever copy was read (a record of one letter of a batch, which
the normalizers refused, publishes that letter alone); the corrected copy is stored too, and is
what the events' attachments point to. Without ``GATEWAY_POSTAL_INBOX`` on this replica the
stored copy is read and nothing moves.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gateway.channels.postal import PROCESSED, QUARANTINE, PostalChannel, _move
from gateway.channels.raw import RawMessage, safe_filename
from gateway.dlq.mail import stored_object
from gateway.intake import Intake
from gateway.ocr import OcrEngine
from gateway.ocr.documents import ACCEPTED_SUFFIXES
from gateway.settings import PostalSettings
from gateway.store.claims import ClaimStore
from gateway.store.dlq import DlqRecord
from gateway.store.state import StateStore

EngineFactory = Callable[[], OcrEngine]


class ScanRereader:
    """``engine``: makes the OCR engine for one redrive (closed after it: its processes are
    not kept between redrives, which are rare)."""

    def __init__(
        self,
        settings: PostalSettings,
        claims: ClaimStore,
        intake: Intake,
        state: StateStore,
        engine: EngineFactory,
    ) -> None:
        self._settings = settings
        self._claims = claims
        self._intake = intake
        self._state = state
        self._engine = engine

    async def messages(self, record: DlqRecord, reference: str | None) -> list[RawMessage]:
        del reference  # only documents sent through the web take a corrected reference
        with tempfile.TemporaryDirectory(prefix="dlq-scan-") as scratch:
            path = await self._copy_to_read(record, Path(scratch))
            original = await self._claims.put(await asyncio.to_thread(path.read_bytes))
            engine = self._engine()
            inbox = self._settings.inbox or Path(scratch)
            channel = PostalChannel(
                self._settings.model_copy(update={"inbox": inbox}),
                self._intake,
                self._claims,
                self._state,
                engine,
            )
            scan_key = ":".join(record.source_key.split(":")[:2])  # postal:<sha256>
            try:
                letters = await channel.read_letters(path)
                messages = await channel.letter_messages(
                    path, original, record.received_at, letters, scan_key
                )
            finally:
                await asyncio.to_thread(engine.close)
        if scan_key == record.source_key:
            return messages
        # one letter of a batch was refused (the scan itself went to processed/): that letter
        return [message for message in messages if message.source_key == record.source_key]

    async def settle(self, record: DlqRecord, messages: list[RawMessage]) -> str:
        """Move the scan from ``quarantine/`` to ``processed/<date>/``; what was done."""
        del messages
        quarantined = self._quarantined(record)
        if quarantined is None or self._settings.inbox is None:
            return "no scan of that name in the quarantine folder: nothing moved"
        folder = self._settings.inbox / PROCESSED / record.received_at.date().isoformat()
        await asyncio.to_thread(_move, quarantined, folder)
        return f"scan moved from {QUARANTINE}/ to {PROCESSED}/{folder.name}/"

    async def close(self) -> None:
        """Nothing held between redrives."""

    def _quarantined(self, record: DlqRecord) -> Path | None:
        name = record.details.get("file")
        if self._settings.inbox is None or not name or safe_filename(name) != name:
            return None
        path = self._settings.inbox / QUARANTINE / name
        return path if path.is_file() else None

    async def _copy_to_read(self, record: DlqRecord, scratch: Path) -> Path:
        """A copy, under the scan's own name (its suffix tells its type), of the file in the
        quarantine folder if there is one, else of the stored raw copy."""
        name = safe_filename(record.details.get("file") or record.source_id or "scan")
        target = scratch / name
        quarantined = self._quarantined(record)
        if quarantined is not None:
            await asyncio.to_thread(shutil.copyfile, quarantined, target)
            return target
        raw_copy = await stored_object(self._claims, record)
        data = await self._claims.get(raw_copy.sha256)
        if target.suffix.lower() not in ACCEPTED_SUFFIXES:  # a letter's record names no file
            target = target.with_name(f"{target.name}{sniffed_suffix(data)}")
        await asyncio.to_thread(target.write_bytes, data)
        return target


_MAGIC = (
    (b"%PDF", ".pdf"),
    (b"\x89PNG", ".png"),
    (b"\xff\xd8", ".jpg"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)


def sniffed_suffix(data: bytes) -> str:
    """The suffix a scan's first bytes say it has (the OCR engine reads by suffix)."""
    found = (suffix for magic, suffix in _MAGIC if data.startswith(magic))
    return next(found, "")
