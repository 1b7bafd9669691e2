"""Searching only near a literal (or around digit runs) finds what a plain scan finds."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.normalizers.contacts import (
    _DIGIT_GROUP,
    _EMAIL,
    _EMAIL_REACH,
    _PHONE_CANDIDATE,
    _PHONE_REACH,
)
from gateway.normalizers.identifiers import _DIGIT_RUN, _LONGEST, _NAM, _NIR, _NISS
from gateway.reference import _REFERENCE_RE, _REFERENCE_REACH
from gateway.textsearch import blank_spans, finditer_around, finditer_near

MAIL_TEXT = st.text(alphabet="ab-@.x1 Z9_é\n", max_size=120)
NUMBER_TEXT = st.text(alphabet="0123456789 .-ABab TREMx\n", max_size=80)


def spans(matches: object) -> list[tuple[int, int]]:
    return [match.span() for match in matches]  # type: ignore[attr-defined]


@given(st.text(alphabet="ab-@.x1 Z9_é\n", max_size=200))
def test_property_emails_near_an_at_sign_are_all_the_valid_length_emails(text: str) -> None:
    plain = [m for m in _EMAIL.finditer(text) if m.group(0).index("@") <= 64]  # RFC 5321
    assert spans(finditer_near(_EMAIL, text, "@", _EMAIL_REACH)) == spans(plain)


@given(MAIL_TEXT)
def test_property_references_near_a_dash_are_all_the_references(text: str) -> None:
    found = finditer_near(_REFERENCE_RE, text, "-", _REFERENCE_REACH)
    assert spans(found) == spans(_REFERENCE_RE.finditer(text))


@given(NUMBER_TEXT)
def test_property_identifiers_around_digit_runs_are_all_the_identifiers(text: str) -> None:
    runs = [match.span() for match in _DIGIT_RUN.finditer(text)]
    for pattern in (_NAM, _NIR, _NISS):
        found = finditer_around(pattern, text, runs, _LONGEST)
        assert spans(found) == spans(pattern.finditer(text))


@given(st.text(alphabet="0123456789 ().-/+x\u00a0\n", max_size=80))
def test_property_phone_candidates_around_digit_groups_are_all_the_candidates(text: str) -> None:
    groups = [match.span() for match in _DIGIT_GROUP.finditer(text)]
    found = finditer_around(_PHONE_CANDIDATE, text, groups, _PHONE_REACH)
    assert spans(found) == spans(_PHONE_CANDIDATE.finditer(text))


def test_given_a_match_longer_than_the_window_then_it_is_found_whole() -> None:
    pattern = re.compile(r"x@y+")
    text = "x@" + "y" * 50
    assert [m.group(0) for m in finditer_near(pattern, text, "@", 3)] == [text]


def test_given_no_literal_then_nothing_is_searched() -> None:
    assert list(finditer_near(_EMAIL, "no address here", "@", _EMAIL_REACH)) == []


@given(st.text(max_size=60), st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60))))
def test_property_blank_spans_keeps_the_length_and_blanks_exactly_the_spans(
    text: str, pairs: list[tuple[int, int]]
) -> None:
    spans = [(min(a, b), min(max(a, b), len(text))) for a, b in pairs]
    blanked = blank_spans(text, spans, "|")
    covered = {i for start, end in spans for i in range(start, end)}
    assert len(blanked) == len(text)
    assert all(blanked[i] == ("|" if i in covered else text[i]) for i in range(len(text)))
