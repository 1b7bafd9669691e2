"""Language detection: fr/en/nl and others; None when unsure."""

from __future__ import annotations

import pytest

from gateway.normalizers.language import (
    DEFAULT_LANGUAGES,
    QUICK_CHARS,
    SAMPLE_CHARS,
    careful_reading,
    detect_language,
    reads_as_prose,
)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour, je n'ai toujours pas reçu ma carte d'assurance maladie.", "fr"),
        ("Hello, I still have not received my health insurance card.", "en"),
        ("Goedendag, ik heb mijn verzekeringskaart nog steeds niet ontvangen.", "nl"),
        ("Guten Tag, ich habe meine Versicherungskarte immer noch nicht erhalten.", "de"),
    ],
)
def test_given_a_sentence_then_its_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "ok", "Merci!", "12345 67890 PL-7K3M-9Q2X-HB4G", "???"])
def test_given_too_little_text_then_none(text: str) -> None:
    assert detect_language(text) is None


PROSE_OPENINGS = [
    (
        "Bonjour, je vous écris parce que je n'ai toujours pas reçu ma carte d'assurance "
        "maladie, malgré ma demande envoyée il y a plus de trois mois.",
        "fr",
    ),
    (
        "Hello, I am writing because I still have not received my health insurance card, "
        "although I sent my request more than three months ago.",
        "en",
    ),
    (
        "Goedendag, ik schrijf u omdat ik mijn verzekeringskaart nog steeds niet heb "
        "ontvangen, hoewel ik mijn aanvraag meer dan drie maanden geleden heb verstuurd.",
        "nl",
    ),
    (
        "Guten Tag, ich schreibe Ihnen, weil ich meine Versicherungskarte immer noch nicht "
        "erhalten habe, obwohl ich den Antrag vor mehr als drei Monaten geschickt habe.",
        "de",
    ),
    (
        "Buenos días, les escribo porque todavía no he recibido mi tarjeta sanitaria, aunque "
        "envié mi solicitud hace más de tres meses y nadie me ha respondido.",
        "es",
    ),
]


@pytest.mark.parametrize(("text", "language"), PROSE_OPENINGS)
def test_given_a_clear_opening_then_the_quick_reading_decides_as_the_careful_one(
    text: str, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert careful_reading(text[:SAMPLE_CHARS], DEFAULT_LANGUAGES) == language

    def not_needed(sample: str, languages: tuple[str, ...]) -> str | None:
        raise AssertionError("the careful reading was not needed")

    monkeypatch.setattr("gateway.normalizers.language.careful_reading", not_needed)
    assert reads_as_prose(text[:QUICK_CHARS])
    assert detect_language(text) == language


NOT_PROSE = [
    "Received: by 10.194.236.201 with HTTP; Fri, 5 Jul 2013 16:24:27 -0700 (PDT) "
    "Date: Fri, 5 Jul 2013 16:24:27 -0700 Message-ID: <CAF=abc@mail.gmail.com>",
    '<html><body><font color="#FFFFFF">9bbf38a544f990e73cd12f3c56c60e6180edebd31d752d3997fa'
    "</font><br><a href='http://www.example.com/'>cliquez ici pour vous désabonner</a>",
    "Dossier 2026-11-20 / 14:32 / 514 555 0123 / TREM 5503 1512 / 1 85 05 78 006 084 36 / "
    "montant 1 234,56 $ / référence PL-7K3M-9Q2X-HB4G / 3 pièces jointes",
]


@pytest.mark.parametrize("text", NOT_PROSE)
def test_given_an_opening_that_is_not_prose_then_only_the_careful_reading_decides(
    text: str,
) -> None:
    assert not reads_as_prose(text[:QUICK_CHARS])
    assert detect_language(text) == careful_reading(text[:SAMPLE_CHARS], DEFAULT_LANGUAGES)
