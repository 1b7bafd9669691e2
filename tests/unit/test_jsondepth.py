"""The depth scan of raw JSON: exact against a byte-by-byte reading, whatever the chunking."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.jsondepth import DEFAULT_MAX_DEPTH, DepthScanner, TooDeep, check_depth

scalars = st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{}é\n', max_size=8)
# what sits beside the nested value at each level: strings that look like structure, and
# shallow containers (width without depth)
SIBLINGS: list[list[Any]] = [[], [1, "]]"], ['\\"[', {}], [[], [[]], {"}": "{"}], [None] * 50]


def nested(draw: st.DrawFn, depth: int, leaf: Any) -> Any:
    """``leaf`` inside ``depth`` arrays and objects, each with siblings of its own."""
    value = leaf
    for shape in draw(
        st.lists(st.integers(0, 2 * len(SIBLINGS) - 1), min_size=depth, max_size=depth)
    ):
        siblings = SIBLINGS[shape // 2]
        if shape % 2:
            value = [*siblings, value]
        else:
            value = {**{f"[{i}": s for i, s in enumerate(siblings)}, '"{': value}
    return value


@st.composite
def deep_and_wide(draw: st.DrawFn) -> tuple[Any, int]:
    """A document of known depth: several branches side by side, the deepest one ``depth``."""
    depths = draw(st.lists(st.integers(0, 2 * DEFAULT_MAX_DEPTH), min_size=1, max_size=4))
    branches = [nested(draw, depth, draw(scalars)) for depth in depths]
    return branches, value_depth(branches)


def value_depth(value: Any) -> int:
    """Depth of a parsed value (recursive: the documents here are at most ~130 deep)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((value_depth(item) for item in value), default=0)
    return 0


def reference_depth(document: bytes) -> int:
    """The deepest nesting, one byte at a time (strings and their escapes skipped), up to a
    backslash outside a string: no JSON parser reads past one."""
    return reading(document)[0]


def reading(document: bytes) -> tuple[int, bool]:
    """The deepest nesting, and whether the reading stopped at a stray backslash."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in document:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "\\":
            return deepest, True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest, False


def chunked(document: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(document), *(cut % (len(document) + 1) for cut in cuts)})
    return [document[start:end] for start, end in itertools.pairwise(points)]


def refused(chunks: list[bytes], limit: int = DEFAULT_MAX_DEPTH) -> bool:
    scanner = DepthScanner(limit)
    try:
        for chunk in chunks:
            scanner.feed(chunk)
    except TooDeep:
        return True
    return False


@given(deep_and_wide(), st.lists(st.integers(0, 10_000), max_size=8))
def test_given_a_deep_and_wide_document_then_it_is_refused_exactly_past_the_limit(
    document: tuple[Any, int], cuts: list[int]
) -> None:
    value, depth = document
    raw = json.dumps(value).encode()
    assert reference_depth(raw) == depth
    assert refused(chunked(raw, cuts)) == (depth > DEFAULT_MAX_DEPTH)


@given(
    st.binary().map(lambda b: bytes(b'[]{}"\\ a'[x % 8] for x in b)),
    st.lists(st.integers(0, 10_000), max_size=8),
    st.integers(0, 8),
)
def test_given_any_bytes_cut_anywhere_then_the_scan_agrees_with_a_byte_by_byte_reading(
    raw: bytes, cuts: list[int], limit: int
) -> None:
    """Cuts inside strings, between a backslash and what it escapes, inside runs of brackets.
    Past a stray backslash (no parser reads on) the scan may refuse more, never less."""
    deepest, stopped = reading(raw)
    if stopped:
        assert refused(chunked(raw, cuts), limit) or deepest <= limit
    else:
        assert refused(chunked(raw, cuts), limit) == (deepest > limit)


def test_a_document_at_the_limit_is_read_and_one_level_more_is_refused() -> None:
    check_depth(b"[" * 64 + b"]" * 64)
    with pytest.raises(TooDeep, match="deeper than 64"):
        check_depth(b"[" * 65 + b"]" * 65)


def test_brackets_in_strings_and_escaped_quotes_do_not_count() -> None:
    check_depth(json.dumps({"body": "[" * 10_000 + '\\"{' * 10_000}).encode())


def test_fifty_thousand_nested_arrays_are_refused_after_the_first_chunk() -> None:
    scanner = DepthScanner()
    with pytest.raises(TooDeep):
        scanner.feed(b"[" * 65_536)
