"""Opening scanned documents: which pages there are, and the text layer where a PDF has one.

PDFs are read with pypdfium2 (PDFium, the engine of Chromium's viewer): page count, text layer,
and rendering at 300 dpi for OCR; TIFF, PNG and JPEG with Pillow (every frame of a multi-page
TIFF). A corrupt, encrypted or empty file raises ``UnreadableDocument`` (gateway.errors) with a
reason a person can act on.

Decompression bombs: an image frame over ``MAX_PAGE_PIXELS`` (a few kB of PNG or TIFF can claim
40,000 x 40,000 pixels, 1.6 GB once decoded) is refused before it is decoded, every frame of a
TIFF checked, not only the first as Pillow does; a PDF page is rendered at a lower resolution
when 300 dpi would exceed the same bound (a 200-inch page would be 3.6 Gpx).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageSequence, UnidentifiedImageError

from gateway.errors import UnreadableDocument

PDF_SUFFIXES = {".pdf"}
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
ACCEPTED_SUFFIXES = PDF_SUFFIXES | IMAGE_SUFFIXES
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
# PDFium is not thread-safe, not even for two documents: one call at a time in a process (the
# channel inspects files in threads; OCR workers are processes of their own).
PDFIUM = threading.Lock()
MIN_TEXT_LAYER_CHARS = 40  # a page with less is treated as a scan (a stray header, a page number)
MAX_PAGES = 200
MAX_PAGE_PIXELS = 90_000_000  # an A3 page at 600 dpi is 70 Mpx; Pillow warns from 89.5 Mpx


@dataclass(frozen=True)
class PageSource:
    """One page: its number (from 1) and its text layer, if the PDF has a usable one."""

    number: int
    text_layer: str | None = None


def inspect_document(path: Path) -> list[PageSource]:
    """The pages of a document; raises ``UnreadableDocument``."""
    if path.stat().st_size == 0:
        raise UnreadableDocument("empty_file", "the file is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return _pdf_pages(path)
    if suffix in IMAGE_SUFFIXES:
        return [PageSource(number) for number in range(1, _image_frames(path) + 1)]
    raise UnreadableDocument(
        "unsupported_type", f"{suffix or 'no suffix'}: not PDF, TIFF, PNG or JPEG"
    )


def _pdf_pages(path: Path) -> list[PageSource]:
    with PDFIUM:
        return _pdf_pages_locked(path)


def _pdf_pages_locked(path: Path) -> list[PageSource]:
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableDocument("encrypted_pdf", "the PDF is password-protected") from None
        raise UnreadableDocument("corrupt_pdf", f"the PDF cannot be opened: {exc}") from None
    try:
        if len(document) == 0:
            raise UnreadableDocument("empty_file", "the PDF has no page")
        if len(document) > MAX_PAGES:
            raise UnreadableDocument(
                "too_many_pages", f"{len(document)} pages (at most {MAX_PAGES})"
            )
        return [
            PageSource(index + 1, _text_layer(_page(document, index)))
            for index in range(len(document))
        ]
    finally:
        document.close()


def _page(document: pdfium.PdfDocument, index: int) -> pdfium.PdfPage:
    """PDFium bounds the structures it reads (objects nested past its limit read as null; a page
    tree too deep or looping gives no page): the latter is refused by name."""
    try:
        return document[index]
    except pdfium.PdfiumError:
        raise UnreadableDocument(
            "corrupt_pdf", f"page {index + 1} cannot be loaded (a broken or looping page tree)"
        ) from None


def _text_layer(page: pdfium.PdfPage) -> str | None:
    text = page.get_textpage().get_text_range().replace("\r\n", "\n").strip()
    return text if len(text) >= MIN_TEXT_LAYER_CHARS else None


def _image_frames(path: Path) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Pillow only warns of corrupt EXIF, huge images...
            with Image.open(path) as image:
                frames = int(getattr(image, "n_frames", 1))
                if frames > MAX_PAGES:
                    raise UnreadableDocument(
                        "too_many_pages", f"{frames} pages (at most {MAX_PAGES})"
                    )
                for frame in range(frames):
                    image.seek(frame)
                    _check_pixels(image.width, image.height, frame + 1)
                image.load()  # a truncated file fails here, not later in a worker
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableDocument("image_too_large", str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, Warning) as exc:
        raise UnreadableDocument("corrupt_image", f"the image cannot be read: {exc}") from None
    return frames


def _check_pixels(width: int, height: int, page: int) -> None:
    if width * height > MAX_PAGE_PIXELS:
        raise UnreadableDocument(
            "image_too_large",
            f"page {page} is {width} x {height} pixels (at most {MAX_PAGE_PIXELS:,} per page)",
        )


def render_scale(width_pt: float, height_pt: float, dpi: int) -> float:
    """PDF points to pixels at ``dpi``, lowered so that the page stays within MAX_PAGE_PIXELS."""
    scale = dpi / 72
    pixels = width_pt * scale * height_pt * scale
    if pixels > MAX_PAGE_PIXELS:
        scale *= (MAX_PAGE_PIXELS / pixels) ** 0.5 * 0.999  # PDFium rounds sizes up
    return scale


def page_image(path: Path, number: int, dpi: int = 300) -> Image.Image:
    """Page ``number`` (from 1) as an 8-bit grey image (rendered at ``dpi`` for a PDF)."""
    if path.suffix.lower() in PDF_SUFFIXES:
        with PDFIUM:
            document = pdfium.PdfDocument(str(path))
            try:
                page = document[number - 1]
                width, height = page.get_size()
                bitmap = page.render(scale=render_scale(width, height, dpi), grayscale=True)
                rendered: Image.Image = bitmap.to_pil()
                return rendered.convert("L")
            finally:
                document.close()
    with Image.open(path) as image:
        frame = next(f for i, f in enumerate(ImageSequence.Iterator(image)) if i == number - 1)
        return frame.convert("L")


def assemble_pdf(path: Path, pages: Sequence[tuple[int, bytes | None]]) -> bytes:
    """One PDF of ``pages``: (number, a one-page PDF of it) each; a page without its own PDF
    (a text layer) is copied from ``path``, a PDF already searchable."""
    with PDFIUM:
        assembled = pdfium.PdfDocument.new()
        original = pdfium.PdfDocument(str(path)) if path.suffix.lower() in PDF_SUFFIXES else None
        try:
            for number, page_pdf in pages:
                if page_pdf is not None:
                    single = pdfium.PdfDocument(page_pdf)
                    assembled.import_pages(single)
                    single.close()
                elif original is not None:
                    assembled.import_pages(original, [number - 1])
            out = io.BytesIO()
            assembled.save(out)
            return reproducible(out.getvalue())
        finally:
            assembled.close()
            if original is not None:
                original.close()


_CREATION_DATE = re.compile(rb"/CreationDate\(D:\d{14}")
_FILE_ID = re.compile(rb"/ID\[<([0-9A-F]{32})><([0-9A-F]{32})>\]")


def reproducible(pdf: bytes) -> bytes:
    """The same pages give the same bytes: PDFium stamps a new document with the time and a
    random file id; the date becomes a fixed one and the id a digest of the rest (same lengths,
    so the cross-reference offsets still hold). A letter read again after a crash then gets the
    same searchable copy, under the same hash, as the first time."""
    dated = _CREATION_DATE.sub(b"/CreationDate(D:19700101000000", pdf)
    neutral = _FILE_ID.sub(b"/ID[<" + b"0" * 32 + b"><" + b"0" * 32 + b">]", dated)
    digest = hashlib.md5(neutral, usedforsecurity=False).hexdigest().upper().encode()
    return _FILE_ID.sub(b"/ID[<" + digest + b"><" + digest + b">]", dated)
