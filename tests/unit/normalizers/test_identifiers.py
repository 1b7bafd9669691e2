"""Identifiers: NAM (Québec), NIR (France, Corsica), NISS (Belgium, both centuries).

Valid test numbers are built with their published check (stdnum's own calculators), so the
tests do not depend on a real person's number.
"""

from __future__ import annotations

import pytest
from stdnum.fr import nir

from gateway.events.common import IdentifierOwner, IdentifierScheme
from gateway.normalizers.identifiers import find_identifiers, identifier_from_field


def nir_with_key(first13: str) -> str:
    return first13 + nir.calc_check_digits(first13)


def niss_with_check(first9: str, *, born_2000s: bool = False) -> str:
    number = int(("2" if born_2000s else "") + first9)
    return first9 + f"{97 - number % 97:02d}"


VALID_NIR = nir_with_key("1841275123456")
CORSICA_NIR = nir_with_key("18412" + "2A" + "123456")
NISS_1900S = niss_with_check("850730033")
NISS_2000S = niss_with_check("050730033", born_2000s=True)


def spaced_nir(value: str) -> str:
    groups = (value[0], value[1:3], value[3:5], value[5:7], value[7:10], value[10:13], value[13:])
    return " ".join(groups)


def dotted_niss(value: str) -> str:
    return f"{value[:2]}.{value[2:4]}.{value[4:6]}-{value[6:9]}.{value[9:]}"


def wrong_last_digit(value: str) -> str:
    return value[:-1] + str((int(value[-1]) + 1) % 10)


@pytest.mark.parametrize(
    ("text", "scheme", "value", "valid"),
    [
        ("Mon NAM : TREM 8503 1512", IdentifierScheme.CA_QC_RAMQ, "TREM85031512", True),
        ("NAM trem85031512 svp", IdentifierScheme.CA_QC_RAMQ, "TREM85031512", True),
        ("carte TREM 8553 1512 (femme)", IdentifierScheme.CA_QC_RAMQ, "TREM85531512", True),
        ("NAM TREM 8513 1512", IdentifierScheme.CA_QC_RAMQ, "TREM85131512", False),
        ("NAM TREM 8502 3012", IdentifierScheme.CA_QC_RAMQ, "TREM85023012", False),
        (f"NIR {spaced_nir(VALID_NIR)}", IdentifierScheme.FR_NIR, VALID_NIR, True),
        (f"n° SS {VALID_NIR}", IdentifierScheme.FR_NIR, VALID_NIR, True),
        (f"Corse : {spaced_nir(CORSICA_NIR)}", IdentifierScheme.FR_NIR, CORSICA_NIR, True),
        (
            f"sécurité sociale {spaced_nir(wrong_last_digit(VALID_NIR))}",
            IdentifierScheme.FR_NIR,
            wrong_last_digit(VALID_NIR),
            False,
        ),
        (f"NISS {dotted_niss(NISS_1900S)}", IdentifierScheme.BE_NISS, NISS_1900S, True),
        (f"rijksregisternummer {NISS_2000S}", IdentifierScheme.BE_NISS, NISS_2000S, True),
        (
            f"numéro national {wrong_last_digit(NISS_1900S)}",
            IdentifierScheme.BE_NISS,
            wrong_last_digit(NISS_1900S),
            False,
        ),
    ],
)
def test_given_an_identifier_in_text_then_found_with_its_scheme_and_check(
    text: str, scheme: IdentifierScheme, value: str, valid: bool
) -> None:
    found = [f.identifier for f in find_identifiers(text)]
    assert [(i.scheme, i.value, i.valid) for i in found] == [(scheme, value, valid)]


@pytest.mark.parametrize(
    "text",
    [
        "référence de commande 123456789012",  # 12 digits: not a NAM (no letters)
        "appelez le 514 555 0123",  # a phone number
        "dossier 98765432101 du 3 mars",  # 11 bare digits failing mod 97, no keyword
        "facture 284127512345679 payée",  # 15 bare digits failing the NIR key, no keyword
        "ABCD 1234",  # too short for a NAM
    ],
)
def test_near_misses_are_not_identifiers(text: str) -> None:
    assert find_identifiers(text) == []


def test_given_a_form_field_then_the_scheme_comes_from_the_shape_and_owner_is_kept() -> None:
    nam = identifier_from_field("trem 8503 1512", IdentifierOwner.REPRESENTED_PERSON)
    assert nam is not None
    assert (nam.scheme, nam.value, nam.valid, nam.owner) == (
        IdentifierScheme.CA_QC_RAMQ,
        "TREM85031512",
        True,
        IdentifierOwner.REPRESENTED_PERSON,
    )
    niss = identifier_from_field(dotted_niss(NISS_1900S), IdentifierOwner.COMPLAINANT)
    assert niss is not None
    assert niss.scheme is IdentifierScheme.BE_NISS
    assert identifier_from_field("not a number", IdentifierOwner.COMPLAINANT) is None
