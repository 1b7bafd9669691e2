"""Printable letters (PDF, fpdf2) for the mail room: the last resort when no email or SMS reaches
the person. Each letter is written atomically to ``GATEWAY_DATA_DIR/letters/<date>/``; the mail
room prints the folder of the day. The returned id is the letter's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

from gateway.dates import long_date
from gateway.errors import PermanentSendError
from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.store.durable import write_file_atomically

UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def letter_pdf(message: OutgoingMessage, when: datetime) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(25, 25, 25)
    pdf.add_page()
    family = _font(pdf)
    pdf.set_font(family, size=11)
    write = _writer(pdf, family)
    write(message.recipient, 6)
    pdf.ln(12)
    write(long_date(when, message.content.language), 6)
    pdf.ln(6)
    pdf.set_font(family, size=12)
    write(message.content.subject, 7)
    pdf.ln(4)
    pdf.set_font(family, size=11)
    write(message.content.text, 6)
    return bytes(pdf.output())


def _font(pdf: FPDF) -> str:
    if UNICODE_FONT.exists():
        pdf.add_font("DejaVu", fname=str(UNICODE_FONT))
        return "DejaVu"
    return "Helvetica"


def _writer(pdf: FPDF, family: str) -> Callable[[str, float], None]:
    def write(text: str, height: float) -> None:
        if family == "Helvetica":  # the core font knows Latin-1 only
            text = text.replace("\u2013", "-").replace("\u2019", "'")
            text = text.encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")

    return write


class LetterPrinter:
    medium = Medium.LETTER

    def __init__(self, data_dir: Path) -> None:
        self._root = data_dir / "letters"

    async def send(self, message: OutgoingMessage) -> str:
        if not message.recipient.strip():
            raise PermanentSendError("no postal address to print on the letter")
        return await asyncio.to_thread(self._write, message)

    def _write(self, message: OutgoingMessage) -> str:
        now = datetime.now(UTC)
        folder = self._root / now.date().isoformat()
        path = folder / f"{message.reference}-{message.notification_id[:8]}.pdf"
        write_file_atomically(path, letter_pdf(message, now))
        return str(path)

    async def close(self) -> None:
        return None
