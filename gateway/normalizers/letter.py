"""What a scanned letter says about itself: OCR look-alikes repaired, and the letter's head.

- Look-alikes: OCR confuses O/0, I/1, S/5, B/8, Z/2 where letters and digits mix, and its
  language model "corrects" codes (``G1R 1S5`` read ``GIR 155``, ``H2X 0C1`` read ``H2X OC1``).
  Where a format says letter or digit by position (a Québec NAM: 4 letters + 8 digits; a
  Canadian postal code: A9A 9A9), each position is mapped to its kind; the repair is kept only
  when it makes a valid value out of an invalid one, and the identifiers so repaired say so
  (``repaired: true``).
- The head: the sender (first block: name, then address lines), the subject (``Objet :`` /
  ``Re:``/``Subject:`` line) and the date written on the letter (``Québec, le 14 mars 2025``,
  ``March 14, 2025``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from gateway.channels.raw import RawMessage
from gateway.normalizers.identifiers import valid_nam

_TO_LETTER = str.maketrans("0125864", "OIZSBGA")
_TO_DIGIT = str.maketrans("OoQDIlizZSsBGg", "00001112255866")
_DIGITISH = "[0-9OoQDIlizZSsBGg]"
_NAM_SHAPE = re.compile(
    rf"(?<![\w])([A-Za-z0-9]{{4}})([ \-]?)({_DIGITISH}{{4}})([ \-]?)({_DIGITISH}{{4}})(?![\w])"
)
_POSTAL_SHAPE = re.compile(r"(?<![\w])([A-Z0-9]{3}) ([A-Z0-9]{3})(?![\w])")
_CANADIAN_POSTAL = re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\d[ABCEGHJ-NPRSTV-Z]\d$")
_SUBJECT = re.compile(r"^\s*(?:objet|object|subject|re|concerne)\s*:\s*(.+)$", re.IGNORECASE)
_CONTACT_LINE = re.compile(
    r"@|t[ée]l|phone|\d{3}[ .-]?\d{3}[ .-]?\d{4}|assurance|NAM|NIR|NISS", re.I
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("janvier", "january", "jan"),
            ("février", "fevrier", "february", "feb"),
            ("mars", "march", "mar"),
            ("avril", "april", "apr"),
            ("mai", "may"),
            ("juin", "june", "jun"),
            ("juillet", "july", "jul"),
            ("août", "aout", "august", "aug"),
            ("septembre", "september", "sep", "sept"),
            ("octobre", "october", "oct"),
            ("novembre", "november", "nov"),
            ("décembre", "decembre", "december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_DATE_FR = re.compile(r"\b(?:le\s+)?(1er|\d{1,2})\s+([A-Za-zéûÉÛ]+)\s+(\d{4})\b", re.IGNORECASE)
_DATE_EN = re.compile(r"\b([A-Za-z]+)\s+(\d{1,2})(?:st|nd|rd|th)?,\s+(\d{4})\b")


@dataclass(frozen=True)
class LetterHead:
    name: str | None
    address: str | None
    subject: str | None
    letter_date: date | None


def repair_lookalikes(text: str) -> tuple[str, set[str]]:
    """The text with look-alikes repaired in NAMs and Canadian postal codes, and the repaired
    NAM values (compact, upper case)."""
    repaired: set[str] = set()

    def nam(match: re.Match[str]) -> str:
        letters = match.group(1).translate(_TO_LETTER).upper()
        digits = (match.group(3) + match.group(5)).translate(_TO_DIGIT)
        original = (match.group(1) + match.group(3) + match.group(5)).upper()
        value = letters + digits
        if value == original or valid_nam(original) or not valid_nam(value):
            return match.group(0)
        repaired.add(value)
        return f"{letters}{match.group(2)}{digits[:4]}{match.group(4)}{digits[4:]}"

    def postal(match: re.Match[str]) -> str:
        raw = match.group(1) + match.group(2)
        mixed = any(c.isdigit() for c in raw) and any(c.isalpha() for c in raw)
        if not mixed or _CANADIAN_POSTAL.match(raw):  # a phone's "418 682", a word, or fine
            return match.group(0)
        fixed = "".join(
            character.translate(_TO_LETTER if index % 2 == 0 else _TO_DIGIT)
            for index, character in enumerate(raw)
        )
        return f"{fixed[:3]} {fixed[3:]}" if _CANADIAN_POSTAL.match(fixed) else match.group(0)

    return _POSTAL_SHAPE.sub(postal, _NAM_SHAPE.sub(nam, text)), repaired


def letter_head(text: str) -> LetterHead:
    blocks = [block.strip().split("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    sender = blocks[0] if blocks else []
    address_lines = [line.strip() for line in sender[1:] if not _CONTACT_LINE.search(line)]
    return LetterHead(
        name=sender[0].strip() if sender and not _CONTACT_LINE.search(sender[0]) else None,
        address="\n".join(address_lines) or None,
        subject=next(
            (m.group(1).strip() for line in text.split("\n") if (m := _SUBJECT.match(line))), None
        ),
        letter_date=_first_date(text[:1500]),
    )


def _first_date(text: str) -> date | None:
    for match in _DATE_FR.finditer(text):
        found = _date(match.group(3), match.group(2), match.group(1))
        if found:
            return found
    for match in _DATE_EN.finditer(text):
        found = _date(match.group(3), match.group(1), match.group(2))
        if found:
            return found
    return None


def _date(year: str, month: str, day: str) -> date | None:
    number = _MONTHS.get(month.casefold())
    if number is None:
        return None
    try:
        return date(int(year), number, 1 if day.lower() == "1er" else int(day))
    except ValueError:
        return None


@dataclass(frozen=True)
class LetterInput:
    """A postal input with its text repaired and its head read into subject and sender."""

    raw: RawMessage
    repaired: frozenset[str]
    letter_date: date | None


def letter_input(raw: RawMessage) -> LetterInput:
    text, repaired = repair_lookalikes(raw.text)
    head = letter_head(text)
    sender = replace(
        raw.sender,
        name=raw.sender.name or head.name,
        postal_address=raw.sender.postal_address or head.address,
    )
    return LetterInput(
        replace(raw, text=text, subject=raw.subject or head.subject, sender=sender),
        frozenset(repaired),
        head.letter_date,
    )
