"""Contacts: emails, phone numbers in E.164 with a default region, postal address blocks."""

from __future__ import annotations

import pytest

from gateway.normalizers.contacts import (
    find_emails,
    find_phones,
    find_postal_address,
    normalise_email,
    normalise_phone,
)


def test_given_emails_in_text_then_normalised_and_unique() -> None:
    text = "écrire à Marie.T@Example.ORG. ou b@example.org ou marie.t@example.org, pas à x@y"
    assert find_emails(text) == ["Marie.T@example.org", "b@example.org"]


@pytest.mark.parametrize("address", ["", "bad@", "@example.org", "a b@example.org"])
def test_given_not_an_address_then_none(address: str) -> None:
    assert normalise_email(address) is None


@pytest.mark.parametrize(
    ("number", "region", "e164"),
    [
        ("514 555 0123", "CA", "+15145550123"),
        ("(514) 555-0123", "CA", "+15145550123"),
        ("0470 12 34 56", "BE", "+32470123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "CA", "+33612345678"),
    ],
)
def test_given_a_phone_then_e164_with_the_default_region(
    number: str, region: str, e164: str
) -> None:
    assert normalise_phone(number, region) == e164
    assert find_phones(f"tél. {number} merci", region) == [e164]


@pytest.mark.parametrize("number", ["12", "000 000 0000", "phone"])
def test_given_not_a_phone_then_none(number: str) -> None:
    assert normalise_phone(number, "CA") is None


@pytest.mark.parametrize(
    ("text", "block"),
    [
        (
            "Marie Tremblay\n123 rue Principale\nMontréal QC H2X 1Y4\n\nMadame,",
            "Marie Tremblay\n123 rue Principale\nMontréal QC H2X 1Y4",
        ),
        (
            "Jean Dupont\n12 avenue de la Gare\n75001 Paris",
            "Jean Dupont\n12 avenue de la Gare\n75001 Paris",
        ),
        (
            "Luc Peeters\nRue de la Loi 16\n1000 Bruxelles",
            "Luc Peeters\nRue de la Loi 16\n1000 Bruxelles",
        ),
    ],
)
def test_given_a_letter_head_then_the_address_block(text: str, block: str) -> None:
    assert find_postal_address(text) == block


def test_given_no_postal_code_then_no_address() -> None:
    assert find_postal_address("Bonjour,\nje n'ai rien reçu depuis 2026.") is None
