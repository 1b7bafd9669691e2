"""MIME trees nested deep and wide (multiparts and attached messages mixed): the bound of
``parse_mail`` (MAX_MIME_DEPTH) refuses them by name, never a RecursionError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.channels.mail import MAX_MIME_DEPTH, parse_mail
from gateway.errors import InputRejected

HEAD = b"From: a@example.org\r\nSubject: fond\r\nMIME-Version: 1.0\r\n"


def mime_tree(kinds: list[str], depth: int, width: int) -> bytes:
    """Levels of multipart/mixed (with ``width`` sibling parts) and message/rfc822, in turn."""
    entity = b"Content-Type: text/plain\r\n\r\nAu fond.\r\n"
    for level in range(depth):
        if kinds[level % len(kinds)] == "multipart":
            mark = b"b%d" % level
            sibling = b"--" + mark + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"
            entity = (
                b'Content-Type: multipart/mixed; boundary="'
                + mark
                + b'"\r\n\r\n'
                + sibling * width
                + b"--"
                + mark
                + b"\r\n"
                + entity
                + b"--"
                + mark
                + b"--\r\n"
            )
        else:
            entity = b"Content-Type: message/rfc822\r\n\r\n" + HEAD + entity
    return HEAD + entity


kinds = st.lists(st.sampled_from(["multipart", "message"]), min_size=1, max_size=4)


@given(kinds, st.integers(MAX_MIME_DEPTH + 1, 3_000), st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_given_a_mime_tree_past_the_bound_then_it_is_refused_by_name(
    kinds: list[str], depth: int, width: int
) -> None:
    with pytest.raises(InputRejected) as refused:
        parse_mail(mime_tree(kinds, depth, width))
    assert refused.value.reason_code == "too_deeply_nested"


@given(kinds, st.integers(1, 30), st.integers(0, 3))
@settings(max_examples=25, deadline=None)
def test_given_a_mime_tree_as_deep_as_real_mail_then_it_is_read(
    kinds: list[str], depth: int, width: int
) -> None:
    parsed = parse_mail(mime_tree(kinds, depth, width))
    assert parsed.subject == "fond"
