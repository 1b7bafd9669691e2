"""Which language a visitor gets, and that both catalogues say everything."""

from __future__ import annotations

import pytest

from gateway.web.i18n import MESSAGES, choose_language


@pytest.mark.parametrize(
    ("query", "header", "language"),
    [
        ("en", "fr-CA", "en"),
        (None, "en-CA,en;q=0.9,fr;q=0.8", "en"),
        (None, "fr;q=0.5,en;q=0.9", "en"),
        (None, "de-DE,nl;q=0.9", "fr"),
        (None, None, "fr"),
        ("xx", "en", "en"),
        (None, "en;q=abc,fr", "fr"),
    ],
)
def test_language_choice(query: str | None, header: str | None, language: str) -> None:
    assert choose_language(query, header) == language


def test_both_catalogues_have_the_same_keys_and_no_empty_text() -> None:
    assert set(MESSAGES["fr"]) == set(MESSAGES["en"])
    assert all(text.strip() for catalogue in MESSAGES.values() for text in catalogue.values())
