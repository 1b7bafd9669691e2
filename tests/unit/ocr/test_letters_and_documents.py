"""Opening documents and cutting batch scans into letters (no OCR needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

from gateway.errors import UnreadableDocument
from gateway.ocr import PageText
from gateway.ocr.documents import MAX_PAGE_PIXELS, inspect_document, page_image, render_scale
from gateway.ocr.letters import split_letters
from gateway.ocr.tesseract import has_separator_code, is_blank, read_page
from tests.conftest import REPO
from tests.support.letters import blank_page, save_tiff, separator_page


def page(number: int, text: str = "texte", **kind: bool) -> PageText:
    return PageText(number, text, confidence=90.0, **kind)


def test_separator_sheets_cut_a_batch_into_letters_and_leading_ones_are_ignored() -> None:
    pages = [
        page(1, separator=True),
        page(2),
        page(3),
        page(4, "", separator=True),
        page(5),
        page(6, "", blank=True),
        page(7),
    ]
    letters = split_letters(pages)
    assert [[p.number for p in letter.pages] for letter in letters] == [[2, 3], [5], [7]]


def test_for_duplex_scans_blank_pages_do_not_separate() -> None:
    pages = [page(1), page(2, "", blank=True), page(3), page(4, "", separator=True), page(5)]
    letters = split_letters(pages, split_on_blank=False)
    assert [[p.number for p in letter.pages] for letter in letters] == [[1, 3], [5]]


def test_a_letters_confidence_weighs_its_pages_by_their_text() -> None:
    letters = split_letters(
        [PageText(1, "a" * 300, confidence=90.0), PageText(2, "b" * 100, confidence=50.0)]
    )
    assert letters[0].confidence == pytest.approx(80.0)
    assert split_letters([PageText(1, "layer", text_layer=True)])[0].confidence is None


def test_blank_and_separator_pages_are_recognised() -> None:
    assert is_blank(blank_page())
    assert not is_blank(separator_page())
    assert has_separator_code(separator_page())
    assert not has_separator_code(blank_page())


def test_a_multipage_tiff_has_its_pages(tmp_path: Path) -> None:
    path = save_tiff([blank_page(), separator_page(), blank_page()], tmp_path / "batch.tif")
    assert [p.number for p in inspect_document(path)] == [1, 2, 3]
    assert has_separator_code(page_image(path, 2))


def test_a_pdf_text_layer_is_used_as_it_is(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(
        0, 6, "Objet : plainte. Mon numero TREM 8503 1512 n'a pas ete reconnu au guichet."
    )
    path = tmp_path / "typed.pdf"
    pdf.output(str(path))
    [only] = inspect_document(path)
    assert only.text_layer is not None
    assert "TREM 8503 1512" in only.text_layer


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.pdf", b"", "empty_file"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj <<>> garbage", "corrupt_pdf"),
        ("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "corrupt_image"),
        ("letter.docx", b"PK\x03\x04 a word file", "unsupported_type"),
        ("noext", b"something", "unsupported_type"),
    ],
)
def test_files_that_are_not_readable_scans_say_why(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableDocument) as refused:
        inspect_document(path)
    assert refused.value.reason_code == reason


def test_an_encrypted_pdf_is_refused_as_such(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "confidential")
    path = tmp_path / "locked.pdf"
    pdf.output(str(path))
    with pytest.raises(UnreadableDocument) as refused:
        inspect_document(path)
    assert refused.value.reason_code == "encrypted_pdf"


def test_a_truncated_tiff_is_corrupt(tmp_path: Path) -> None:
    path = save_tiff([blank_page(), blank_page()], tmp_path / "whole.tif")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnreadableDocument):
        inspect_document(cut)
    with Image.open(path) as whole:
        assert whole.n_frames == 2


def test_the_printed_separator_sheet_of_the_docs_is_a_separator() -> None:
    """docs/separator-sheet.pdf (what the mail room prints) is read, with Tesseract, as one."""
    sheet = REPO / "docs" / "separator-sheet.pdf"
    assert read_page(str(sheet), 1, "fra+eng", 200).separator


def test_an_image_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    """40,000 x 40,000 pixels (1.6 GB once decoded) in a PNG of about 200 kB."""
    path = tmp_path / "bomb.png"
    Image.new("1", (40_000, 40_000)).save(path)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(UnreadableDocument) as refused:
        inspect_document(path)
    assert refused.value.reason_code == "image_too_large"


def test_a_huge_frame_behind_a_small_first_one_is_refused_too(tmp_path: Path) -> None:
    """Pillow checks the size of a TIFF's first frame only; every frame is checked here."""
    path = tmp_path / "batch.tif"
    small, huge = Image.new("1", (2_480, 3_508)), Image.new("1", (12_000, 12_000))
    small.save(path, save_all=True, append_images=[huge], compression="group4")
    with pytest.raises(UnreadableDocument) as refused:
        inspect_document(path)
    assert refused.value.reason_code == "image_too_large"
    assert "page 2" in refused.value.reason


def test_a_giant_pdf_page_is_rendered_within_the_pixel_bound(tmp_path: Path) -> None:
    pdf = FPDF(unit="pt", format=(14_400, 14_400))  # 200 x 200 inches, the largest PDF allows
    pdf.add_page()
    path = tmp_path / "poster.pdf"
    pdf.output(str(path))
    assert render_scale(14_400, 14_400, 300) < 300 / 72
    assert render_scale(595, 842, 300) == 300 / 72  # an A4 page keeps its 300 dpi
    image = page_image(path, 1)
    assert image.width * image.height <= MAX_PAGE_PIXELS
