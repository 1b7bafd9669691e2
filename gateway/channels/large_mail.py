"""A mail too large to read whole: its parts walked as a stream, the oversized ones left out.

The standard library's ``email`` package holds a message and all its parts in memory. A mail of
hundreds of megabytes (a scanned file, a video) would be held whole, and more than once. So a
mail over the channel's size limit is stored first (its raw copy, streamed from the server), then
read back from that copy line by line (lines themselves read in bounded pieces): every leaf
part over the per-part limit is left out of a reduced copy of the mail (its headers kept, its
body empty) and recorded with its size; the reduced copy, which holds the text and the parts
within the limit, is then read by ``parse_mail`` like any other mail.

MIME as RFC 2046 writes it: a multipart body is split by lines ``--boundary`` and ends at
``--boundary--``; a part ends where any enclosing boundary line starts.
"""

from __future__ import annotations

import email.parser
from dataclasses import dataclass, field
from email.message import Message
from typing import BinaryIO

from gateway.channels.mail import MAIL_POLICY, MAX_MIME_DEPTH

PIECE = 64 * 1024  # the most read at once: a 100 MB line is read in pieces
_HEADER_BYTES = 256 * 1024  # a part's header block past this is body, not headers


@dataclass(frozen=True)
class OversizedPart:
    """A part left out: what the event says of it."""

    filename: str | None
    media_type: str
    size: int  # decoded bytes (base64: three quarters of the encoded size)


@dataclass
class ReducedMail:
    raw: bytes
    oversized: list[OversizedPart] = field(default_factory=list)


class _Lines:
    """The source's lines, each in pieces of at most ``PIECE`` bytes; ``at_line_start`` tells
    whether the last piece began a line (only such a piece can be a boundary line)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._pushed: bytes | None = None
        self._line_ended = True
        self.at_line_start = True

    def next(self) -> bytes:
        """The next piece; b"" at the end."""
        if self._pushed is not None:
            piece, self._pushed = self._pushed, None
            self.at_line_start = True  # only line starts are pushed back
            return piece
        piece = self._source.readline(PIECE)
        self.at_line_start = self._line_ended
        self._line_ended = piece.endswith(b"\n")
        return piece

    def push_back(self, piece: bytes) -> None:
        self._pushed = piece


def reduce_large_mail(source: BinaryIO, part_limit: int) -> ReducedMail:
    """The mail of ``source`` without its leaf parts over ``part_limit`` decoded bytes."""
    reduced = ReducedMail(raw=b"")
    out: list[bytes] = []
    _copy_entity(_Lines(source), out, reduced, part_limit, boundaries=(), depth=1)
    reduced.raw = b"".join(out)
    return reduced


def _copy_entity(
    lines: _Lines,
    out: list[bytes],
    reduced: ReducedMail,
    limit: int,
    boundaries: tuple[bytes, ...],
    depth: int,
) -> None:
    """Copy one entity (headers, then body) up to an enclosing boundary line (left unread)."""
    header_lines = _read_headers(lines, boundaries)
    out += header_lines
    headers = email.parser.BytesHeaderParser(policy=MAIL_POLICY).parsebytes(b"".join(header_lines))
    boundary = _boundary(headers)
    if boundary is not None and depth <= MAX_MIME_DEPTH:
        _copy_multipart_body(lines, out, reduced, limit, (*boundaries, boundary), depth)
    else:
        _copy_leaf_body(lines, out, reduced, limit, boundaries, headers)


def _read_headers(lines: _Lines, boundaries: tuple[bytes, ...]) -> list[bytes]:
    kept: list[bytes] = []
    size = 0
    while piece := lines.next():
        if lines.at_line_start and _ends_part(piece, boundaries):
            lines.push_back(piece)  # a part with no body
            break
        kept.append(piece)
        size += len(piece)
        if piece in (b"\r\n", b"\n") or size > _HEADER_BYTES:
            break
    return kept


def _copy_multipart_body(
    lines: _Lines,
    out: list[bytes],
    reduced: ReducedMail,
    limit: int,
    boundaries: tuple[bytes, ...],
    depth: int,
) -> None:
    own = boundaries[-1]
    while piece := lines.next():  # the preamble, then each part after its boundary line
        if not lines.at_line_start:
            out.append(piece)
            continue
        marker = _boundary_marker(piece, boundaries)
        if marker is None:
            out.append(piece)
        elif marker == own:
            out.append(piece)
            _copy_entity(lines, out, reduced, limit, boundaries, depth + 1)
        elif marker == own + b"--":
            out.append(piece)
            _copy_epilogue(lines, out, boundaries[:-1])
            return
        else:  # an enclosing part's boundary: this multipart was not closed
            lines.push_back(piece)
            return


def _copy_epilogue(lines: _Lines, out: list[bytes], boundaries: tuple[bytes, ...]) -> None:
    while piece := lines.next():
        if lines.at_line_start and _ends_part(piece, boundaries):
            lines.push_back(piece)
            return
        out.append(piece)


def _copy_leaf_body(
    lines: _Lines,
    out: list[bytes],
    reduced: ReducedMail,
    limit: int,
    boundaries: tuple[bytes, ...],
    headers: Message,
) -> None:
    base64 = str(headers.get("Content-Transfer-Encoding", "")).strip().lower() == "base64"
    body: list[bytes] | None = []
    size = 0  # decoded bytes, as near as can be told while reading
    while piece := lines.next():
        if lines.at_line_start and _ends_part(piece, boundaries):
            lines.push_back(piece)
            break
        size += (len(piece.strip()) * 3) // 4 if base64 else len(piece)
        if body is not None:
            body.append(piece)
            if size > limit:
                body = None  # over the limit: only counted from now on
    if body is not None:
        out += body
        return
    out.append(b"\r\n")  # the part's headers stay; its body is empty
    reduced.oversized.append(
        OversizedPart(filename=_filename(headers), media_type=_media_type(headers), size=size)
    )


def _ends_part(piece: bytes, boundaries: tuple[bytes, ...]) -> bool:
    return _boundary_marker(piece, boundaries) is not None


def _boundary_marker(piece: bytes, boundaries: tuple[bytes, ...]) -> bytes | None:
    """``boundary`` or ``boundary--`` when the line is one of the enclosing boundary lines."""
    if not piece.startswith(b"--") or not boundaries:
        return None
    marker = piece[2:].rstrip()
    for boundary in boundaries:
        if marker in (boundary, boundary + b"--"):
            return marker
    return None


def _boundary(headers: Message) -> bytes | None:
    try:
        if headers.get_content_maintype() != "multipart":
            return None
        boundary = headers.get_boundary()
    except (ValueError, IndexError, AttributeError, TypeError, LookupError):
        return None
    return boundary.encode("utf-8", "replace") if boundary else None


def _filename(headers: Message) -> str | None:
    try:
        name = headers.get_filename()
    except (ValueError, IndexError, AttributeError, TypeError, LookupError):
        return None
    return str(name) if name else None


def _media_type(headers: Message) -> str:
    try:
        return str(headers.get_content_type())
    except (ValueError, IndexError, AttributeError, TypeError, LookupError):
        return "application/octet-stream"
