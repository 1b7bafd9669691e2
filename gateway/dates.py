"""Dates as people read them, in French and English (pages, emails, letters)."""

from __future__ import annotations

from datetime import date, datetime

_MONTHS = {
    "fr": [
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ],
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
}  # fmt: skip


def long_date(value: date | datetime | str, language: str) -> str:
    """``25 novembre 2026`` / ``November 25, 2026``; ISO strings are read first."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    month = _MONTHS.get(language, _MONTHS["en"])[value.month - 1]
    if language == "fr":
        day = "1er" if value.day == 1 else str(value.day)
        return f"{day} {month} {value.year}"
    return f"{month} {value.day}, {value.year}"
