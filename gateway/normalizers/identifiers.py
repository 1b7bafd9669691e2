"""Health-insurance and social-security numbers found in text and form fields, validated.

- ``ca-qc-ramq``: Québec health-insurance number (NAM): 3 letters of the surname, the first
  letter of the given name, birth year (2 digits), month (+50 for women), day, and 2 digits
  (often written ``TREM 8503 1512``). RAMQ publishes no check digit: a NAM is valid when its
  date part is a real date.
- ``fr-nir``: French social-security number: 13 characters (Corsica: 2A/2B as department) and
  a 2-digit key = 97 - (number mod 97); checked with python-stdnum.
- ``be-niss``: Belgian national number: YY.MM.DD-SSS.CC, CC = 97 - (number mod 97), with a
  leading 2 for people born from 2000; checked with python-stdnum.

A value shaped like one but failing its check is kept with ``valid: false``. A bare run of
digits counts as a NIR/NISS only when it passes its check or a keyword names it nearby: an order
number or a phone number is not an identifier. Values are never logged unmasked (gateway.logs).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum.be import nn as belgian_number
from stdnum.fr import nir as french_nir

from gateway.events.common import Identifier, IdentifierOwner, IdentifierScheme
from gateway.textsearch import finditer_around

_NAM = re.compile(r"\b([A-Za-z]{4})[ \-]?(\d{2})[ \-]?(\d{2})[ \-]?(\d{2})[ \-]?(\d{2})\b")
_NIR = re.compile(
    r"(?<![\d])([1-478])[ .]?(\d{2})[ .]?(\d{2})[ .]?(\d{2}|2[AaBb])[ .]?(\d{3})[ .]?(\d{3})"
    r"[ .]?(\d{2})(?![\d])"
)
_NISS = re.compile(r"(?<![\d.])(\d{2})([ .]?)(\d{2})\2(\d{2})[ .\-]?(\d{3})[ .]?(\d{2})(?![\d])")
_NIR_WORDS = re.compile(
    r"s[ée]curit[ée] sociale|\bNIR\b|\bn° ?SS\b|num[ée]ro de s[ée]cu|social security", re.I
)
_NISS_WORDS = re.compile(
    r"\bNISS\b|\bINSZ\b|num[ée]ro national|registre national|rijksregister"
    r"|national (?:register )?number",
    re.I,
)
_KEYWORD_WINDOW = 80
# Every identifier has at least 8 digits, in groups of 2 or more (Corsica: "2A" within a NIR).
# Each shape is searched only around these runs (gateway.textsearch): the longest, a spaced NIR,
# is 21 characters.
_DIGIT_RUN = re.compile(r"\d\d(?:[ .\-]?(?:\d|2[AaBb])){6}")
_LONGEST = 24


@dataclass(frozen=True)
class Found:
    """An identifier and where it was in the text (so other extractors can skip the span)."""

    identifier: Identifier
    start: int
    end: int


def valid_nam(value: str) -> bool:
    """A NAM (4 letters + 8 digits, no spaces) whose date part is a real date."""
    if not re.fullmatch(r"[A-Z]{4}\d{8}", value):
        return False
    year, month, day = int(value[4:6]), int(value[6:8]), int(value[8:10])
    month = month - 50 if month > 50 else month
    if not 1 <= month <= 12:
        return False
    # Either century: February 29 is possible in 2000 and 1900 is not a leap year, so accept
    # day 29 when either century's year is a leap year.
    last_day = max(
        calendar.monthrange(1900 + year, month)[1], calendar.monthrange(2000 + year, month)[1]
    )
    return 1 <= day <= last_day


def valid_nir(value: str) -> bool:
    return bool(french_nir.is_valid(value))


def valid_niss(value: str) -> bool:
    return bool(belgian_number.is_valid(value))


VALIDATORS: dict[IdentifierScheme, Callable[[str], bool]] = {
    IdentifierScheme.CA_QC_RAMQ: valid_nam,
    IdentifierScheme.FR_NIR: valid_nir,
    IdentifierScheme.BE_NISS: valid_niss,
}


def _compact(match: re.Match[str]) -> str:
    return re.sub(r"[ .\-]", "", match.group(0)).upper()


def _near_keyword(text: str, match: re.Match[str], words: re.Pattern[str]) -> bool:
    window = text[max(0, match.start() - _KEYWORD_WINDOW) : match.end() + 10]
    return words.search(window) is not None


def _candidates(text: str) -> Iterator[Found]:
    runs = [match.span() for match in _DIGIT_RUN.finditer(text)]
    if not runs:  # no 8 digits in a row: no identifier (one fast scan)
        return
    for match in finditer_around(_NAM, text, runs, _LONGEST):
        value = _compact(match)
        yield Found(_identifier(IdentifierScheme.CA_QC_RAMQ, value), match.start(), match.end())
    for match in finditer_around(_NIR, text, runs, _LONGEST):
        value = _compact(match)
        spaced = " " in match.group(0) or "." in match.group(0)
        if valid_nir(value) or spaced or _near_keyword(text, match, _NIR_WORDS):
            yield Found(_identifier(IdentifierScheme.FR_NIR, value), match.start(), match.end())
    for match in finditer_around(_NISS, text, runs, _LONGEST):
        value = _compact(match)
        formatted = bool(re.search(r"\d{2}\.\d{2}\.\d{2}", match.group(0)))
        if valid_niss(value) or formatted or _near_keyword(text, match, _NISS_WORDS):
            yield Found(_identifier(IdentifierScheme.BE_NISS, value), match.start(), match.end())


def _identifier(
    scheme: IdentifierScheme, value: str, owner: IdentifierOwner = IdentifierOwner.COMPLAINANT
) -> Identifier:
    return Identifier(scheme=scheme, value=value, valid=VALIDATORS[scheme](value), owner=owner)


def find_identifiers(text: str) -> list[Found]:
    """Identifiers in a text, first come first kept when two shapes overlap (valid ones win)."""
    found = sorted(_candidates(text), key=lambda f: (not f.identifier.valid, f.start))
    kept: list[Found] = []
    for candidate in found:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda f: f.start)


def identifier_from_field(value: str, owner: IdentifierOwner) -> Identifier | None:
    """An identifier a person typed in a form field: its scheme is guessed from its shape."""
    compact = re.sub(r"[\s.\-]", "", value).upper()
    if re.fullmatch(r"[A-Z]{4}\d{8}", compact):
        scheme = IdentifierScheme.CA_QC_RAMQ
    elif re.fullmatch(r"[1-478]\d{4}(?:\d{2}|2[AB])\d{8}", compact):
        scheme = IdentifierScheme.FR_NIR
    elif re.fullmatch(r"\d{11}", compact):
        scheme = IdentifierScheme.BE_NISS
    else:
        return None
    return _identifier(scheme, compact, owner)
