"""Hypothesis strategies for hostile JSON: nested deep (up to 50,000 levels) and wide (siblings at
every level), written as bytes directly (``json.dumps`` itself recurses on such values)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

from gateway.jsondepth import DEFAULT_MAX_DEPTH


@dataclass(frozen=True)
class Nested:
    """A JSON value ``depth`` levels deep, and where it sits in the document."""

    document: bytes
    depth: int
    where: str


def nest(depth: int, kinds: list[str], width: int, core: bytes = b'"fond"') -> bytes:
    """``core`` inside ``depth`` arrays and objects (``kinds`` repeated), each level with
    ``width`` siblings before the nested value."""
    opens: list[bytes] = []
    closes: list[bytes] = []
    for level in range(depth):
        if kinds[level % len(kinds)] == "[":
            opens.append(b"[" + b'0,"]",' * width)
            closes.append(b"]")
        else:
            siblings = b"".join(b'"k%d":"{",' % i for i in range(width))
            opens.append(b"{" + siblings + b'"v":')
            closes.append(b"}")
    return b"".join(opens) + core + b"".join(reversed(closes))


@st.composite
def nested_values(
    draw: st.DrawFn, min_depth: int = DEFAULT_MAX_DEPTH + 1, max_depth: int = 50_000
) -> tuple[bytes, int]:
    depth = draw(st.integers(min_depth, max_depth))
    kinds = draw(st.lists(st.sampled_from(["[", "{"]), min_size=1, max_size=4))
    width = draw(st.integers(0, 3 if depth > 5_000 else 20))
    return nest(depth, kinds, width), depth


@st.composite
def deep_documents(
    draw: st.DrawFn,
    fields: tuple[str, ...] = ("body", "represented_person", "name"),
    min_depth: int = DEFAULT_MAX_DEPTH + 1,
    max_depth: int = 50_000,
) -> Nested:
    """A deep value as the whole document, or under one of ``fields`` of an object whose other
    fields are ordinary (strings full of brackets and quotes, which do not count)."""
    value, depth = draw(nested_values(min_depth, max_depth))
    where = draw(st.sampled_from(("document", *fields)))
    if where == "document":
        return Nested(value, depth, where)
    ordinary = json.dumps({"subject": '[[[{{{\\"', "language": "fr"}).encode()
    return Nested(ordinary[:-1] + b', "' + where.encode() + b'": ' + value + b"}", depth + 1, where)
