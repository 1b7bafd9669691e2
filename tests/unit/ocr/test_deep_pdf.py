"""PDF structure nested deep: PDFium bounds its own parser (objects nested past its limit read
as null, no recursion to exhaust); a page tree too deep or looping is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import UnreadableDocument
from gateway.ocr.documents import inspect_document, page_image

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalog), with a valid xref."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    return out + trailer % (len(objects) + 1, xref)


def page_holding(value: bytes) -> list[bytes]:
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Junk " + value + b" >>"
    return [CATALOG, PAGES, page]


def page_tree(depth: int) -> list[bytes]:
    objects = [CATALOG]
    for level in range(depth):
        number = level + 2
        parent = b" /Parent %d 0 R" % (number - 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (number + 1, parent))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] >>" % (depth + 1))
    return objects


@given(
    st.integers(100, 100_000),
    st.sampled_from([(b"[", b"]"), (b"<< /A ", b" >>"), (b"[ << /B ", b" >> ]")]),
    st.integers(0, 3),
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_given_objects_nested_deep_and_wide_then_the_page_is_read_and_rendered(
    tmp_path: Path, depth: int, brackets: tuple[bytes, bytes], width: int
) -> None:
    opening, closing = brackets
    siblings = b"1 (x) " * width
    value = (opening + siblings) * depth + b"0" + closing * depth
    path = tmp_path / "deep.pdf"
    path.write_bytes(pdf(page_holding(value)))
    assert [page.number for page in inspect_document(path)] == [1]
    assert page_image(path, 1, dpi=20).size[0] > 0


@pytest.mark.parametrize(
    "objects", [page_tree(5_000), [CATALOG, PAGES, PAGES.replace(b"3 0 R", b"2 0 R")]]
)
def test_given_a_page_tree_too_deep_or_looping_then_the_document_is_refused_by_name(
    tmp_path: Path, objects: list[bytes]
) -> None:
    path = tmp_path / "tree.pdf"
    path.write_bytes(pdf(objects))
    with pytest.raises(UnreadableDocument) as refused:
        inspect_document(path)
    assert refused.value.reason_code == "corrupt_pdf"
