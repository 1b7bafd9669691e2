"""Text stage: HTML to text, cleaning, quoted replies and signatures (French and English)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.normalizers.text import LineStartPattern, clean_text, html_to_text, split_reply


def test_given_html_then_paragraphs_and_links_are_kept_and_scripts_dropped() -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>alert('x')</script></head><body>"
        "<p>Bonjour,</p><p>Voir <a href='https://example.org/dossier'>mon dossier</a>.</p>"
        "</body></html>"
    )
    text = html_to_text(html)
    assert "alert" not in text
    assert "color" not in text
    assert text == "Bonjour,\n\nVoir [mon dossier](https://example.org/dossier)."


def test_given_decomposed_accents_and_control_characters_then_nfc_and_clean() -> None:
    decomposed = unicodedata.normalize("NFD", "reçu à Montréal")
    text = clean_text(f"{decomposed}\x00\x07\u200b\r\nsuite   \n\n\n\n\nfin")
    assert text == "reçu à Montréal\nsuite\n\nfin"
    assert unicodedata.is_normalized("NFC", text)


@pytest.mark.parametrize(
    ("text", "body", "quoted_starts"),
    [
        (
            "Merci, voici le document.\n\n"
            "Le 12 nov. 2026 à 10:00, RAMQ <a@b.ca> a écrit :\n> Envoyez",
            "Merci, voici le document.",
            "Le 12 nov.",
        ),
        (
            "Here it is.\n\nOn Tue, Nov 12, 2026 at 10:00 AM Office <a@b.org> wrote:\n> Send it",
            "Here it is.",
            "On Tue",
        ),
        (
            "Voir ci-dessous.\n\nDe : Service <a@b.fr>\nEnvoyé : mardi 12 novembre 2026\nObjet : X",
            "Voir ci-dessous.",
            "De : Service",
        ),
        (
            "See below.\n-----Original Message-----\nFrom: x",
            "See below.",
            "-----Original",
        ),
        ("Yes.\n> line one\n> line two", "Yes.", "> line one"),
    ],
)
def test_given_a_reply_then_the_quoted_conversation_is_separated(
    text: str, body: str, quoted_starts: str
) -> None:
    split = split_reply(text)
    assert split.body == body
    assert split.quoted is not None
    assert split.quoted.startswith(quoted_starts)


@pytest.mark.parametrize(
    "signature",
    ["--\nMarie Tremblay\n514 555 0123", "Envoyé de mon iPhone", "Sent from my Galaxy"],
)
def test_given_a_signature_then_it_is_separated(signature: str) -> None:
    split = split_reply(f"Je n'ai rien reçu.\n\n{signature}")
    assert (split.body, split.signature) == ("Je n'ai rien reçu.", signature)


def test_near_miss_a_line_starting_with_on_is_not_a_quote_header() -> None:
    text = "On my card the name is wrong.\nPlease fix it."
    assert split_reply(text).body == text
    assert split_reply(text).quoted is None


def test_given_a_bare_forward_then_the_forwarded_text_is_the_body() -> None:
    text = "-----Original Message-----\nFrom: x\nMy complaint is this."
    assert split_reply(text).body == text


@given(st.text())
def test_property_cleaning_and_splitting_never_raise_nor_invent_text(text: str) -> None:
    cleaned = clean_text(text)
    split = split_reply(cleaned)
    for part in (split.body, split.quoted, split.signature):
        assert part is None or part in cleaned


LINE_PATTERNS = [
    r"(?:On\b.{4,40}\bwrote:|-{2,}\s*Forwarded)\s*$",
    r"(?:>.*(?:\n|$)){2,}",
    r"-- ?\s*$",
]
LINE_PIECES = st.sampled_from(
    ["\n", "On Monday, Marie wrote:", "> quoted", "-- ", "--", "-- Forwarded", " ", "x", "\r"]
)


@given(st.lists(st.one_of(LINE_PIECES, st.text(max_size=5)), max_size=15).map("".join))
def test_property_a_line_start_pattern_finds_what_a_multiline_caret_search_finds(
    text: str,
) -> None:
    for pattern in LINE_PATTERNS:
        plain = re.compile(f"^{pattern}", re.IGNORECASE | re.MULTILINE).search(text)
        assert LineStartPattern(pattern).first(text) == (plain.start() if plain else None)
