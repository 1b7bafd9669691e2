"""The pieces of ``GET /v1/objects``: ranges (RFC 9110), a safe Content-Disposition, tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from gateway.web.objects import RangeNotSatisfiable, byte_range, consumer_of, content_disposition

TOKENS = {"dossiers": SecretStr("token-a"), "archives": SecretStr("token-b")}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=-5", (95, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=90-500", (90, 100)),
        ("bytes=9-3", None),  # invalid: ignored, the whole object
        ("bytes=0-1,4-5", None),  # several ranges: the whole object
        ("items=0-9", None),
        ("bytes=-", None),
    ],
)
def test_one_range_is_served_the_others_are_ignored(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 100)


@given(st.text())
def test_a_content_disposition_never_carries_a_line_break_or_an_unescaped_quote(
    name: str,
) -> None:
    header = content_disposition(name)
    assert header.startswith('attachment; filename="')
    quoted = header.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in quoted
    assert "\\" not in quoted
    assert all(" " <= character <= "~" for character in header)


def test_the_name_comes_whole_in_utf_8_and_without_a_path() -> None:
    assert content_disposition("../../etc/lettre é.pdf") == (
        'attachment; filename=".._.._etc_lettre _.pdf"; '
        "filename*=UTF-8''.._.._etc_lettre%20%C3%A9.pdf"
    )


def test_a_token_names_its_consumer_and_nothing_else_does() -> None:
    assert consumer_of("Bearer token-b", TOKENS) == "archives"
    assert consumer_of("bearer token-a", TOKENS) == "dossiers"
    for header in (None, "", "Bearer", "Bearer ", "Basic token-a", "Bearer token-c", "token-a"):
        assert consumer_of(header, TOKENS) is None
    assert consumer_of("Bearer token-a", {}) is None
