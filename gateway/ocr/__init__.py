"""Reading scanned letters: documents -> pages -> text, behind the ``OcrEngine`` protocol.

``documents.py`` opens a file (PDF, multi-page TIFF, PNG, JPEG) and says which pages carry a
text layer; ``tesseract.py`` reads the others with Tesseract in a process pool (one process per
core, ``OMP_THREAD_LIMIT=1``: about twice as fast per page here as Tesseract's own threads);
``letters.py`` cuts a batch scan into letters at separator sheets. Each letter also gets a
searchable PDF (Tesseract's own PDF renderer, in the same pass as the text: no second OCR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PageText:
    """What was read on one page. ``confidence`` is Tesseract's mean word confidence (0-100),
    None for a text layer; ``rotation`` the quarter turns (degrees) applied before reading;
    ``pdf``: the page as a one-page searchable PDF (its image, and the words read laid over it,
    invisible, where they are), when one was asked for."""

    number: int
    text: str
    confidence: float | None = None
    rotation: int = 0
    text_layer: bool = False
    blank: bool = False
    separator: bool = False
    pdf: bytes | None = field(default=None, repr=False)


class OcrEngine(Protocol):
    """Reads every page of a document. Raises ``UnreadableDocument`` for a corrupt, encrypted
    or empty file. CPU-heavy work runs outside the event loop."""

    pages_at_once: int  # pages it reads side by side (its worker processes)

    async def read(self, path: Path) -> list[PageText]: ...

    async def searchable_pdf(self, path: Path, pages: Sequence[PageText]) -> bytes | None:
        """One searchable PDF of these pages of ``path`` (a letter of a batch), or None when
        the engine makes none."""
        ...

    def close(self) -> None: ...
