"""How deep JSON nests, read from its raw bytes before any parser recurses into it.

Python's ``json`` and pydantic's parser descend once per nested array or object: 50,000 nested
arrays exhaust the interpreter's recursion (a ``RecursionError``: a 500 on the web, an
unreadable record in a consumer). ``DepthScanner`` reads the bytes as they arrive, chunk by
chunk with its state kept across chunks, skips strings (escapes honoured, a string may span
chunks), and raises ``TooDeep`` as soon as the nesting passes its limit.

It does not validate JSON: the parser still does, on a document now known to be shallow. A
parser reads left to right and stops at the first byte that is not JSON, so it never descends
deeper than the scan counted up to that byte. The bytes are read as UTF-8 (RFC 8259 §8.1):
callers parse them as UTF-8 too.

Cost is linear and in C: one compiled regular expression removes the strings, ``bytes.translate``
everything but brackets, and only when a chunk opens more brackets than the limit could allow
does numpy's cumulative sum give its deepest point. No recursion, no Python loop per byte.
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np

DEFAULT_MAX_DEPTH: Final = 64

# Strings; and from a backslash up to the next unescaped quote, so that no match starts at an
# escaped quote: the rest of a string left open at the end of a chunk is one match, not one per
# quote inside it. A backslash outside a string is not JSON (the parser stops there). Unrolled
# (runs of plain bytes at once) and possessive (no backtracking).
_SKIPPED = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|\\.[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
_PIECE = 64 * 1024  # check_depth reads a whole document in pieces: numpy arrays stay small
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = np.zeros(256, dtype=np.int8)
_STEP[ord("[")] = 1
_STEP[ord("]")] = -1


class TooDeep(ValueError):
    """Arrays and objects nested deeper than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels (arrays and objects)")
        self.limit = limit


class DepthScanner:
    """Feed it a document's bytes in order; ``feed`` raises ``TooDeep`` past ``limit``.

    ``[]`` and ``{}`` are one level, ``{"a": [1]}`` two; a bare scalar is zero."""

    def __init__(self, limit: int = DEFAULT_MAX_DEPTH) -> None:
        self.limit = limit
        self.depth = 0
        self._open_string = b""  # b'"' inside a string, b'"\\' there after a backslash

    def feed(self, chunk: bytes) -> None:
        data = self._open_string + chunk if self._open_string else chunk
        outside = _SKIPPED.sub(b"", data)
        quote = outside.find(b'"')
        if quote < 0:
            self._open_string = b""
        else:
            # the rest is inside a string (skipped but for a last lone backslash)
            self._open_string = b'"\\' if outside.endswith(b"\\") else b'"'
            outside = outside[:quote]
        self._count(outside.translate(_AS_SQUARE, _NOT_BRACKETS))

    def _count(self, brackets: bytes) -> None:
        opens = brackets.count(b"[")
        if self.depth + opens > self.limit:
            running = np.cumsum(_STEP[np.frombuffer(brackets, dtype=np.uint8)], dtype=np.int32)
            if self.depth + int(running.max()) > self.limit:
                raise TooDeep(self.limit)
        self.depth += 2 * opens - len(brackets)


def check_depth(document: bytes, limit: int = DEFAULT_MAX_DEPTH) -> None:
    """Raise ``TooDeep`` if ``document`` nests deeper than ``limit``."""
    scanner = DepthScanner(limit)
    view = memoryview(document)
    for start in range(0, len(document), _PIECE):
        scanner.feed(bytes(view[start : start + _PIECE]))
