"""Contacts: emails, phone numbers in E.164 with a default region, postal address blocks."""

from __future__ import annotations

from datetime import date

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.normalizers import contacts
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


@pytest.mark.parametrize(
    ("text", "region", "phones"),
    [
        # a date and the hour after it spell +1 202-611-2014 once the separators are ignored
        ("Dossier 2026-11-20 / 14:32 / 514 555 0123 / montant 1 234,56 $", "CA", ["+15145550123"]),
        ("Le 2026-11-20 14h32, j'ai appelé le 514 555 0123.", "CA", ["+15145550123"]),
        ("Appel du 20/11/2026 14:32, sans suite.", "CA", []),
        ("Rendez-vous le 20.11.2026 14 h au guichet.", "BE", []),
        ("Mon numéro : 514 555 0123 2026-11-20", "CA", ["+15145550123"]),
        # a slash with no space beside it stays inside a number (Belgian style)
        ("Tél. 02/511.22.33", "BE", ["+3225112233"]),
        # " / " separates two numbers
        ("06 12 34 56 78 / 06 98 76 54 32", "FR", ["+33612345678", "+33698765432"]),
    ],
)
def test_given_dates_and_lists_then_only_the_real_phones(
    text: str, region: str, phones: list[str]
) -> None:
    assert find_phones(text, region) == phones


@settings(max_examples=300)
@given(
    day=st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    hour=st.integers(min_value=0, max_value=23),
    shape=st.sampled_from(["{y}-{m}-{d}", "{d}/{m}/{y}", "{d}.{m}.{y}", "{d}-{m}-{y}"]),
    between=st.sampled_from([" ", " / ", ", ", " à "]),
    region=st.sampled_from(["CA", "FR", "BE"]),
)
def test_property_a_date_and_an_hour_are_never_a_phone(
    day: date, hour: int, shape: str, between: str, region: str
) -> None:
    written = shape.format(y=f"{day.year:04d}", m=f"{day.month:02d}", d=f"{day.day:02d}")
    assert find_phones(f"Le {written}{between}{hour:02d}:30, rien.", region) == []


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        ("Ma facture no 4185551234 n'a pas été remboursée.", []),
        ("Numéro de dossier : 4185551234", []),
        ("Mon numéro de dossier est 4185551234.", []),
        ("My file number is 4185551234.", []),
        ("Claim # 418-555-1234", []),
        ("Numéro d\u2019assurance : 4185551234", []),  # typographic apostrophe
        # a phone's own labels, or a number further from the other label, stay phones
        ("Mon numéro : 418 555 1234", ["+14185551234"]),
        ("Numéro de téléphone : 418 555 1234", ["+14185551234"]),
        ("Joignez-moi au 418 555 1234 pour la facture.", ["+14185551234"]),
        ("Invoice 4185551234, phone 418 555 1235", ["+14185551235"]),
    ],
)
def test_given_a_number_labelled_as_another_kind_then_it_is_no_phone(
    text: str, phones: list[str]
) -> None:
    assert find_phones(text, "CA") == phones


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(["CA", "US", "FR", "BE", "JM"]),
    prefix=st.sampled_from(["", "+1 ", "+33 ", "+32 ", "1-"]),
    area=st.sampled_from(["514", "418", "212", "876", "268", "242", "555", "999", "1", "47"]),
    rest=st.integers(min_value=0, max_value=10**8 - 1),
)
def test_given_a_number_then_asking_its_own_region_first_agrees_with_phonenumbers(
    region: str, prefix: str, area: str, rest: int
) -> None:
    """The short cut (valid in the region it was read in) never decides otherwise than
    ``is_valid_number`` over every region of the country code."""
    try:
        number = phonenumbers.parse(f"{prefix}{area} {rest:07d}", region)
    except phonenumbers.NumberParseException:
        return
    assert contacts._valid(number, region) == phonenumbers.is_valid_number(number)


@settings(max_examples=200, deadline=None)
@given(
    region=st.sampled_from(["CA", "US", "FR", "BE"]),
    prefix=st.sampled_from(["", "+1 ", "+33 ", "+32 ", "0"]),
    area=st.sampled_from(["514", "418", "212", "6", "47", "2", "876"]),
    rest=st.integers(min_value=0, max_value=10**8 - 1),
    elsewhere=st.sampled_from(["CA", "US", "FR", "BE", "JM"]),
)
def test_property_a_phone_in_its_normal_form_normalises_to_itself_in_any_region(
    region: str, prefix: str, area: str, rest: int, elsewhere: str
) -> None:
    """What ``normalise_phone`` takes on trust: an E.164 number it returned is its own
    normal form, whatever the region it is read in next (checked without the caches)."""
    parse = contacts._normalised_phone.__wrapped__
    normal = parse(f"{prefix}{area} {rest:07d}", region)
    if normal is not None:
        assert parse(normal, elsewhere) == normal


@pytest.mark.parametrize(
    "address",
    [
        "Marie.T@Example.ORG",
        "  marie@exemple.qc.ca ",
        "côté@exemple.qc.ca",
        "a@BÜCHER.example",
        "a@xn--bcher-kva.example",
        "x.y+z@sub.Domain.example",
    ],
)
def test_given_an_address_in_its_normal_form_then_it_normalises_to_itself(address: str) -> None:
    check = contacts._normalised_email.__wrapped__
    normal = check(address)
    assert normal is not None
    assert check(normal) == normal


def test_given_a_normal_form_returned_then_it_is_taken_again_without_a_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone = normalise_phone("514 555 0177", "CA")
    email = normalise_email("Lucie.Roy@Exemple.QC.CA")

    def no_parse(*_: object) -> str:
        raise AssertionError("parsed again")

    monkeypatch.setattr(contacts, "_normalised_phone", no_parse)
    monkeypatch.setattr(contacts, "_normalised_email", no_parse)
    assert phone == "+15145550177"
    assert normalise_phone(phone, "FR") == phone
    assert email == "Lucie.Roy@exemple.qc.ca"
    assert normalise_email(email) == email


def test_given_more_normal_forms_than_kept_then_all_are_forgotten_at_once() -> None:
    kept = contacts._NormalForms(limit=2)
    kept.remember("+15145550101")
    kept.remember("+15145550102")
    kept.remember(None)
    assert "+15145550101" in kept
    kept.remember("+15145550103")
    assert "+15145550101" not in kept
    assert "+15145550102" not in kept
    assert "+15145550103" in kept
