"""Tesseract through pytesseract, one page per task in a process pool.

Each page: blank? else OCR (``--psm 3``) with word confidences from the TSV output, and the
page as a searchable PDF from the same run. A page read with a low mean confidence is checked
for orientation (OSD, quarter turns only): a page turned 90° or 180° reads at ~13% accuracy
and ~37 confidence, turned back at ~99% (measured on ``../shared/corpus/postal``). Small skew
needs no deskew: Tesseract's layout analysis absorbs it (same text at ±1.5° and 4°). A page
with almost no text is checked for the separator code.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytesseract
import structlog
import zxingcpp
from PIL import Image

from gateway.errors import UnreadableDocument
from gateway.ocr import PageText
from gateway.ocr.documents import PageSource, assemble_pdf, inspect_document, page_image

log = structlog.get_logger(__name__)

SEPARATOR_CODE = "INTAKE-SEPARATOR"
_SEPARATOR_FORMATS = (
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.DataMatrix,
    zxingcpp.BarcodeFormat.Code128,
)
_SINGLE_IMAGE = {".jpg", ".jpeg", ".png"}
# a separator sheet carries a code and at most a short label: only such pages are searched for
# one (zxing costs 0.2-0.6 s on a full page)
SEPARATOR_MAX_TEXT = 300
ORIENTATION_CHECK_BELOW = 70.0  # mean word confidence under which a page may be turned
BLANK_INK_RATIO = 0.002  # share of dark pixels under which a page is blank


WORKER_MEMORY_BYTES = 3 << 30  # a page needs a few hundred MB; a bomb gets MemoryError


def _init_worker() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # one page per core beats Tesseract's own threads
    # Ctrl-C reaches the whole process group: the gateway stops the pool itself, a worker that
    # took the signal would only print a KeyboardInterrupt traceback on the way out.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A page that would take more (a PDF image stream inflating to gigabytes) fails in this
    # worker with MemoryError instead of drawing the OOM killer onto the machine.
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))


def is_blank(grey: Image.Image) -> bool:
    small = grey.reduce(8) if min(grey.size) > 800 else grey
    dark = sum(small.point(lambda value: 255 if value < 128 else 0).histogram()[255:])
    return dark / (small.width * small.height) < BLANK_INK_RATIO


def has_separator_code(grey: Image.Image) -> bool:
    """At half resolution (a printed code stays readable; four times faster than full size)."""
    small = grey.reduce(2) if min(grey.size) > 1200 else grey
    return any(
        result.text.strip().upper() == SEPARATOR_CODE
        for result in zxingcpp.read_barcodes(small, formats=_SEPARATOR_FORMATS)  # type: ignore[arg-type]  # zxing-cpp 3 takes a tuple; its stubs still say BarcodeFormats
    )


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float
    pdf: bytes | None


def _ocr(image: Image.Image | Path, languages: str, pdf: bool) -> Reading:
    """Text in reading order (lines kept, blocks apart), the mean word confidence and, when
    ``pdf``, the page as a searchable PDF: one Tesseract run writes both (TSV and PDF).

    Tesseract is handed a file: the scan itself when it is one, else the page written as PNM
    (uncompressed). Handing pytesseract an image makes it write a PNG first, which took as long
    as the OCR (1.5 s a page)."""
    with tempfile.TemporaryDirectory() as scratch:
        source = image if isinstance(image, Path) else Path(scratch) / "page.pnm"
        if not isinstance(image, Path):
            image.save(source)
        output = Path(scratch) / "out"
        pytesseract.pytesseract.run_tesseract(
            str(source),
            str(output),
            "pdf tsv" if pdf else "tsv",
            languages,
            config="--psm 3 -c tessedit_create_tsv=1",
        )
        data = pytesseract.pytesseract.file_to_dict(
            output.with_suffix(".tsv").read_text(encoding="utf-8"), "\t", -1
        )
        page_pdf = output.with_suffix(".pdf").read_bytes() if pdf else None
    text, confidence = _words(data)
    return Reading(text, confidence, page_pdf)


def _words(data: dict[str, list[Any]]) -> tuple[str, float]:
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for index, word in enumerate(data["text"]):
        confidence = float(data["conf"][index])
        if confidence < 0 or not str(word).strip():
            continue
        key = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
        lines.setdefault(key, []).append(str(word))
        confidences.append(confidence)
    text, previous = [], None
    for (block, _, _), words in lines.items():
        if previous is not None and previous != block:
            text.append("")  # a blank line between blocks (sender, recipient, paragraphs...)
        text.append(" ".join(words))
        previous = block
    mean = sum(confidences) / len(confidences) if confidences else 0.0
    return "\n".join(text), mean


def _orientation(grey: Image.Image) -> int:
    try:
        osd = pytesseract.image_to_osd(grey, config="--psm 0", output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError:  # too little text to tell
        return 0
    return int(osd.get("rotate", 0)) % 360


def read_page(path: str, number: int, languages: str, dpi: int, pdf: bool = False) -> PageText:
    """One page, in a worker process (``pdf``: with its searchable PDF)."""
    grey = page_image(Path(path), number, dpi)
    if is_blank(grey):
        return PageText(number, "", blank=True)
    whole_file = Path(path).suffix.lower() in _SINGLE_IMAGE  # one page: Tesseract reads it
    reading = _ocr(Path(path) if whole_file else grey, languages, pdf)
    rotation = 0
    if reading.confidence < ORIENTATION_CHECK_BELOW:
        turn = _orientation(grey)
        if turn:
            turned = _ocr(grey.rotate(-turn, expand=True), languages, pdf)
            if turned.confidence > reading.confidence:
                reading, rotation = turned, turn
    if len(reading.text) < SEPARATOR_MAX_TEXT and has_separator_code(grey):
        return PageText(number, "", separator=True)
    return PageText(number, reading.text, round(reading.confidence, 1), rotation, pdf=reading.pdf)


class TesseractEngine:
    def __init__(
        self,
        workers: int | None = None,
        languages: str = "fra+eng",
        dpi: int = 300,
        searchable_pdf: bool = True,
    ) -> None:
        self._languages = languages
        self._dpi = dpi
        self._pdf = searchable_pdf
        self.pages_at_once = workers or os.cpu_count() or 1
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        """A pool with all its processes started now: a spawned pool starts them one at a time
        as pages wait, and the first pages then waited for an interpreter to load Tesseract's
        bindings, Pillow and PDFium (a second or two each, measured in bench/postal.py)."""
        pool = ProcessPoolExecutor(
            max_workers=self.pages_at_once,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
        )
        for _ in range(self.pages_at_once):
            pool.submit(os.getpid)  # each submit finding no idle process starts one
        return pool

    async def read(self, path: Path) -> list[PageText]:
        """The text of every page. A worker that dies (killed, out of memory) breaks the whole
        pool: a new pool is made and the file read again once; if it kills that one too, the
        file is refused (``ocr_crashed``) rather than retried forever."""
        pages = await asyncio.to_thread(inspect_document, path)
        for _attempt in range(2):
            pool = self._pool
            try:
                return list(await asyncio.gather(*(self._page(pool, path, p) for p in pages)))
            except BrokenProcessPool:
                self._renew(pool)
            except MemoryError:
                raise UnreadableDocument(
                    "too_large_in_memory", "a page needs more memory than an OCR worker has"
                ) from None
        raise UnreadableDocument("ocr_crashed", "the OCR worker died twice reading this file")

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:  # the first of the files that saw it break makes the new one
            log.warning("ocr.pool_renewed", reason="a worker died")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    async def _page(self, pool: ProcessPoolExecutor, path: Path, page: PageSource) -> PageText:
        if page.text_layer is not None:
            return PageText(page.number, page.text_layer, text_layer=True)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            pool, read_page, str(path), page.number, self._languages, self._dpi, self._pdf
        )

    async def searchable_pdf(self, path: Path, pages: Sequence[PageText]) -> bytes | None:
        """The letter's pages in one searchable PDF; None when searchable PDFs are off.

        Put together in a thread of this process (PDFium under its lock, ~6 ms a page), not in
        the pool: there it waited behind the next pages' OCR, and the megabyte of each page's
        PDF crossed between the processes twice more. Its inputs are Tesseract's own PDFs and
        the original, which ``inspect_document`` already opened here."""
        if not self._pdf or not pages:
            return None
        parts = [(page.number, page.pdf) for page in pages]
        return await asyncio.to_thread(assemble_pdf, path, parts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
