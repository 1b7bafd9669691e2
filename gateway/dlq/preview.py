"""What a record's raw copy looks like, for an operator deciding what to do with it: a mail's
headers, a scan's first page of text (read by the postal channel's OCR engine, in a worker
process of its own with its memory bound: a hostile scan cannot take the server down), the
first 2 KB of anything else (a form's body, Twilio's parameters)."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import tempfile
from pathlib import Path

from gateway.channels.raw import safe_filename
from gateway.errors import ClaimStoreError, InputRejected
from gateway.ocr.tesseract import TesseractEngine
from gateway.settings import PostalSettings
from gateway.store.catalog import sha256_of_uri
from gateway.store.claims import ClaimStore
from gateway.store.dlq import DlqRecord

HEAD_BYTES = 64 * 1024  # a mail's headers are looked for in its first 64 KB
PREVIEW_BYTES = 2048


async def preview(record: DlqRecord, claims: ClaimStore, postal: PostalSettings) -> str:
    """The raw copy as a person reads it, or why it cannot be shown."""
    sha256 = sha256_of_uri(record.source_uri)
    if sha256 is None:
        return f"(no stored raw copy: {record.source_uri})"
    try:
        if record.channel == "postal":
            return await _first_page(record, await claims.get(sha256), postal)
        head = b"".join([chunk async for chunk in claims.read(sha256, 0, HEAD_BYTES)])
    except ClaimStoreError as exc:
        return f"(the raw copy cannot be read: {exc})"
    if record.channel == "email":
        return mail_headers(head)
    return head[:PREVIEW_BYTES].decode("utf-8", errors="replace")


def mail_headers(head: bytes) -> str:
    """The header fields of a mail, decoded (RFC 2047), one a line."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    try:
        message = parser.parsebytes(head)
        return "\n".join(f"{name}: {value}" for name, value in message.items())
    except Exception as exc:  # noqa: BLE001 (a header too broken to decode: shown raw)
        raw = head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        return f"(headers not decoded: {exc})\n" + raw.decode("utf-8", errors="replace")


async def _first_page(record: DlqRecord, scan: bytes, postal: PostalSettings) -> str:
    name = safe_filename(record.details.get("file") or "scan")
    with tempfile.TemporaryDirectory(prefix="dlq-preview-") as scratch:
        path = Path(scratch) / name
        await asyncio.to_thread(path.write_bytes, scan)
        engine = TesseractEngine(1, postal.languages, postal.dpi, searchable_pdf=False)
        try:
            pages = await engine.read(path)
        except InputRejected as exc:
            return f"(no page can be read: {exc.reason_code}: {exc.reason})"
        except Exception as exc:  # noqa: BLE001 (whatever the readers make of a broken file)
            return f"(no page can be read: {type(exc).__name__}: {exc})"
        finally:
            await asyncio.to_thread(engine.close)
    text = next((page.text for page in pages if page.text.strip()), "")
    return text or "(no page carries any text)"
