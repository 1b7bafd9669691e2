"""A letter's searchable PDF: its pages in order, text layers copied, the same bytes each time."""

from __future__ import annotations

import time
from pathlib import Path

import pypdfium2 as pdfium
from fpdf import FPDF

from gateway.ocr.documents import assemble_pdf, reproducible


def pdf_of(*texts: str) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for text in texts:
        document.add_page()
        document.multi_cell(0, 10, text)
    return bytes(document.output())


def texts_of(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [document[n].get_textpage().get_text_range() for n in range(len(document))]
    finally:
        document.close()


def test_given_page_pdfs_and_text_layer_pages_then_one_pdf_in_order(tmp_path: Path) -> None:
    original = tmp_path / "typed.pdf"
    original.write_bytes(pdf_of("page one has a text layer", "page two", "page three too"))
    read_page = pdf_of("page two as read by OCR")
    assembled = assemble_pdf(original, [(1, None), (2, read_page), (3, None)])
    texts = texts_of(assembled)
    assert len(texts) == 3
    assert "page one has a text layer" in texts[0]
    assert "as read by OCR" in texts[1]
    assert "page three too" in texts[2]


def test_given_the_same_pages_twice_then_the_same_bytes(tmp_path: Path) -> None:
    scan = tmp_path / "scan.tif"  # not a PDF: every page brings its own
    scan.write_bytes(b"II*\x00")
    pages = [(1, pdf_of("letter, page 1")), (2, pdf_of("letter, page 2"))]
    first = assemble_pdf(scan, pages)
    time.sleep(1.1)  # PDFium dates a new document to the second
    assert assemble_pdf(scan, pages) == first
    assert b"/CreationDate(D:19700101000000" in first
    assert reproducible(first) == first  # already neutral: unchanged
