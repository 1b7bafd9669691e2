"""A batch scan cut into letters at separator sheets.

The mail room puts a separator sheet between letters and scans the pile at once. A separator is
a page carrying the code ``INTAKE-SEPARATOR`` (QR or any barcode zxing-cpp reads; print
``docs/separator-sheet.pdf``) or, when blank pages separate (``GATEWAY_POSTAL_SPLIT_ON_BLANK``,
on by default; turn it off for duplex scans whose letters have blank backs), a blank page.
A file without separators is one letter.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ocr import PageText


@dataclass(frozen=True)
class ReadLetter:
    pages: tuple[PageText, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages if page.text)

    @property
    def confidence(self) -> float | None:
        """Mean confidence of the OCR'd pages weighted by their text (None: text layers only)."""
        read = [page for page in self.pages if page.confidence is not None and page.text]
        weight = sum(len(page.text) for page in read)
        if not read or weight == 0:
            return None
        return sum((page.confidence or 0.0) * len(page.text) for page in read) / weight


def split_letters(pages: list[PageText], split_on_blank: bool = True) -> list[ReadLetter]:
    letters: list[ReadLetter] = []
    current: list[PageText] = []
    for page in pages:
        if page.separator or (split_on_blank and page.blank):
            if current:
                letters.append(ReadLetter(tuple(current)))
            current = []
        elif not page.blank:
            current.append(page)
    if current:
        letters.append(ReadLetter(tuple(current)))
    return letters
