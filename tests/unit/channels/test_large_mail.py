"""A mail too large to read whole: its oversized parts left out as a stream is walked."""

from __future__ import annotations

import io
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channels.large_mail import reduce_large_mail
from gateway.channels.mail import parse_mail
from tests.conftest import SHARED

CORPUS = sorted((SHARED / "corpus" / "email").rglob("*.eml"))
KB = 1024


def mail_with(*attachments: tuple[str, bytes], nested: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = "Marie Tremblay <marie@example.org>"
    message["To"] = "plaintes@ramq.example"
    message["Subject"] = "Plainte et pièces jointes"
    message["Message-ID"] = "<large@example.org>"
    message.set_content("Bonjour, je joins mes documents.\n")
    if nested:
        message.add_alternative("<p>Bonjour, je joins mes documents.</p>", subtype="html")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_a_mail_with_nothing_over_the_limit_comes_back_byte_for_byte(path: object) -> None:
    raw = path.read_bytes()  # type: ignore[attr-defined]
    reduced = reduce_large_mail(io.BytesIO(raw), part_limit=1 << 40)
    assert reduced.raw == raw
    assert reduced.oversized == []


def test_an_oversized_part_is_left_out_with_its_size_and_the_rest_is_kept() -> None:
    small, large = b"%PDF small" * 100, b"%PDF large" * 30_000
    raw = mail_with(("petit.pdf", small), ("grand.pdf", large), nested=True)
    reduced = reduce_large_mail(io.BytesIO(raw), part_limit=100 * KB)
    [left_out] = reduced.oversized
    assert left_out.filename == "grand.pdf"
    assert left_out.media_type == "application/pdf"
    assert abs(left_out.size - len(large)) < 4 * KB  # base64 lines counted, padding aside
    parsed = parse_mail(reduced.raw)
    assert "je joins mes documents" in parsed.text
    assert parsed.html is not None
    assert [(p.filename, p.payload) for p in parsed.attachments if p.payload] == [
        ("petit.pdf", small)
    ]
    assert len(reduced.raw) < 20 * KB


def test_a_single_part_mail_over_the_limit_keeps_its_headers() -> None:
    raw = b"From: a@example.org\r\nSubject: Long\r\nContent-Type: text/plain\r\n\r\n"
    raw += b"x" * (300 * KB) + b"\r\n"
    reduced = reduce_large_mail(io.BytesIO(raw), part_limit=100 * KB)
    assert [part.media_type for part in reduced.oversized] == ["text/plain"]
    assert parse_mail(reduced.raw).subject == "Long"


def test_a_line_longer_than_a_read_is_read_in_pieces_and_a_boundary_inside_it_is_data() -> None:
    boundary = "==b=="
    body = b"y" * (200 * KB) + f"--{boundary}--".encode() + b"z" * 10
    raw = (
        (
            f"Subject: Lines\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            f'boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    kept = reduce_large_mail(io.BytesIO(raw), part_limit=1 << 30)
    assert kept.raw == raw
    cut = reduce_large_mail(io.BytesIO(raw), part_limit=100 * KB)
    assert [part.size for part in cut.oversized] == [len(body) + 2]  # with the line's CRLF
    assert parse_mail(cut.raw).text == "Hello"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40 * KB), min_size=1, max_size=5), st.booleans())
def test_property_exactly_the_parts_over_the_limit_are_left_out(
    sizes: list[int], nested: bool
) -> None:
    files = [(f"piece-{n}.pdf", bytes([65 + n]) * size) for n, size in enumerate(sizes)]
    limit = 20 * KB
    reduced = reduce_large_mail(io.BytesIO(mail_with(*files, nested=nested)), part_limit=limit)
    kept = {p.filename: p.payload for p in parse_mail(reduced.raw).attachments if p.payload}
    left_out = {part.filename for part in reduced.oversized}
    margin = KB  # the size of a base64 part is told from its lines: within a line of the truth
    for name, data in files:
        if len(data) > limit + margin:
            assert name in left_out
        elif len(data) < limit - margin and data:
            assert kept[name] == data
        assert (name in kept) != (name in left_out) or not data
