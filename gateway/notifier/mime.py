"""The MIME bytes of a notification email: multipart/alternative, UTF-8 text then HTML.

Written directly rather than through ``email.message``: that package re-parses and re-folds
every header of every message, which cost more than everything else the notifier does
(``bench/notifier.py``). The shape here is fixed and small; what is delicate is left to the
standard library: the RFC 2047 encoding of a non-ASCII sender name (``email.utils``) and
quoted-printable bodies (``binascii.b2a_qp``, RFC 2045); a non-ASCII subject is cut into
encoded words here, by whole characters.
The boundary starts with ``=_``, which quoted-printable output can never contain. Tests parse
the result back with the standard parser.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr

CRLF = b"\r\n"


@functools.lru_cache(maxsize=16)
def encoded_address(address: str) -> str:
    """``Name <addr>`` with a non-ASCII name RFC 2047-encoded."""
    return formataddr(parseaddr(address), charset="utf-8")


ADDRESS_HEADERS = frozenset({"From", "To", "Cc", "Reply-To"})


def encoded_header(name: str, value: str) -> str:
    """A non-ASCII value RFC 2047-encoded and folded; ASCII folded at spaces (RFC 5322 2.2.3).
    An address header is given ready (``encoded_address``): an address whose mailbox itself is
    not ASCII stays UTF-8 (RFC 6532, sent with SMTPUTF8), never an encoded word, which no
    server would read as an address."""
    if value.isascii():
        return _folded(len(name) + 2, value)
    if name in ADDRESS_HEADERS:
        return value
    return "\r\n ".join(encoded_words(value))


def encoded_words(value: str, max_bytes: int = 42) -> list[str]:
    """RFC 2047 "B" encoded words of at most 68 characters, never splitting a character
    (RFC 2047 section 5: each word must decode on its own). ``email.header`` does the same
    but measured its output twice per character: a third of the notifier's time."""
    words, chunk = [], b""
    for character in value:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > max_bytes:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words]


def _folded(used: int, value: str, width: int = 78) -> str:
    lines, line = [], ""
    for word in value.split(" "):
        if line and used + len(line) + 1 + len(word) > width:
            lines.append(line)
            line, used = word, 1
        else:
            line = f"{line} {word}" if line else word
    return "\r\n ".join([*lines, line])


def quoted_printable(text: str) -> bytes:
    lines = text.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(lines, istext=True).replace(b"\n", CRLF)


def _header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"{name}: {encoded_header(name, value)}" for name, value in headers]
    return "\r\n".join(lines).encode("utf-8") + CRLF  # ASCII but for an RFC 6532 address


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
        + quoted_printable(text)
        + CRLF
    )


def alternative_message(
    headers: list[tuple[str, str]], text: str, html: str, boundary_seed: str
) -> bytes:
    """A complete message: ``headers`` (name, unencoded value) then the two parts."""
    boundary = "=_" + boundary_seed.replace("-", "")[:24]
    head = _header_lines(
        [
            *headers,
            ("Date", format_datetime(datetime.now(UTC))),
            ("MIME-Version", "1.0"),
        ]
    ) + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return (
        head
        + delimiter
        + _text_part("plain", text)
        + delimiter
        + _text_part("html", html)
        + f"--{boundary}--\r\n".encode("ascii")
    )
