"""Language detection: fr/en/nl and others; None when unsure."""

from __future__ import annotations

import pytest

from gateway.normalizers.language import detect_language


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
