"""Representation in free text: who the complaint is for, and their name when it is written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.normalizers.representation import represented_from_text


@pytest.mark.parametrize(
    ("text", "relationship", "name"),
    [
        (
            "Je vous écris au nom de ma mère, Jeanne Roy, qui est hospitalisée.",
            "mère",
            "Jeanne Roy",
        ),
        ("J'écris au nom de mon père Jean-Pierre Côté. Il attend.", "père", "Jean-Pierre Côté"),
        ("Au nom de ma fille, Madame Chloé D'Amours.", "fille", "Chloé D'Amours"),
        ("I am writing on behalf of my son Liam O'Brien.", "son", "Liam O'Brien"),
        ("Pour le compte de ma cliente, Mme Anne McDonald.", "cliente", "Anne McDonald"),
        ("On behalf of my mother, Mary SMITH, who cannot write.", "mother", "Mary SMITH"),
        # no name, or not a name: only the relationship
        ("Je vous écris au nom de ma mère. Elle n'a rien reçu.", "mère", None),
        ("On behalf of my son, who is twelve.", "son", None),
        ("Au nom de ma mère Jeanne, qui attend.", "mère", None),  # one word: left to the team
        ("Je suis la tutrice de Paul Roy.", "tutrice", None),  # a role, not a relationship
    ],
)
def test_given_a_representation_then_the_relationship_and_the_name_written_after_it(
    text: str, relationship: str, name: str | None
) -> None:
    found = represented_from_text(text)
    assert found is not None
    assert (found.relationship, found.name) == (relationship, name)


def test_given_no_representation_then_none() -> None:
    assert represented_from_text("Ma mère, Jeanne Roy, m'a conseillé d'écrire.") is None


@given(st.text(max_size=300))
def test_property_never_raises(text: str) -> None:
    represented_from_text(f"au nom de ma mère {text}")
