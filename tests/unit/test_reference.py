"""The complaint reference: deterministic, readable, and its check symbol catches typing errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidReference
from gateway.reference import (
    ALPHABET,
    DATA_SYMBOLS,
    find_references,
    is_valid_symbols,
    parse_reference,
    reference_for,
)

source_keys = st.text(min_size=1, max_size=200)


def symbols_of(reference: str) -> str:
    return reference.split("-", 1)[1].replace("-", "")


@given(source_keys)
def test_given_any_input_when_referenced_then_shape_and_check_are_right(key: str) -> None:
    reference = reference_for(key)
    assert reference.startswith("PL-")
    assert len(symbols_of(reference)) == DATA_SYMBOLS + 1
    assert is_valid_symbols(symbols_of(reference))
    assert parse_reference(reference) == reference


@given(source_keys)
def test_given_the_same_input_twice_then_the_same_reference(key: str) -> None:
    assert reference_for(key) == reference_for(key)


@given(source_keys, st.data())
def test_given_any_single_wrong_symbol_then_the_check_fails(key: str, data: st.DataObject) -> None:
    symbols = symbols_of(reference_for(key))
    position = data.draw(st.integers(0, len(symbols) - 1))
    wrong = data.draw(st.sampled_from([s for s in ALPHABET if s != symbols[position]]))
    typo = symbols[:position] + wrong + symbols[position + 1 :]
    assert not is_valid_symbols(typo)


@given(source_keys, st.data())
def test_given_any_swap_of_neighbours_then_the_check_fails(key: str, data: st.DataObject) -> None:
    symbols = symbols_of(reference_for(key))
    position = data.draw(st.integers(0, len(symbols) - 2))
    a, b = symbols[position], symbols[position + 1]
    swapped = symbols[:position] + b + a + symbols[position + 2 :]
    assert is_valid_symbols(swapped) == (a == b)


def test_exhaustively_every_single_error_and_swap_is_caught_on_one_reference() -> None:
    symbols = symbols_of(reference_for("email:exhaustive"))
    for position in range(len(symbols)):
        for wrong in ALPHABET.replace(symbols[position], ""):
            assert not is_valid_symbols(symbols[:position] + wrong + symbols[position + 1 :])


def test_given_different_inputs_then_references_differ() -> None:
    references = {reference_for(f"webform:key-{n}") for n in range(20_000)}
    assert len(references) == 20_000


def test_given_a_reference_read_over_the_phone_then_it_is_recognised() -> None:
    reference = reference_for("sms:SM123")
    spoken = symbols_of(reference).lower().replace("1", "l").replace("0", "o")
    assert parse_reference(f"pl {spoken[:4]} {spoken[4:8]} {spoken[8:]}") == reference


@pytest.mark.parametrize(
    "text",
    ["", "PL-1234", "PL-0000-0000-0001", "hello world", "PL-UUUU-UUUU-UUUU", "12-0000-0000-0000"],
)
def test_given_a_malformed_or_unchecked_reference_then_it_is_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_given_a_text_with_references_then_only_valid_ones_are_found() -> None:
    good = reference_for("email:<a@b>")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    text = f"Re: ma plainte {good} (et non {bad}), voir aussi {good.lower()}"
    assert find_references(text) == [good]


def test_given_an_office_prefix_then_references_carry_it() -> None:
    assert reference_for("x", prefix="RAMQ").startswith("RAMQ-")
    with pytest.raises(ValueError, match="prefix"):
        reference_for("x", prefix="ramq")


def test_the_example_in_the_documentation_is_a_valid_reference() -> None:
    assert parse_reference("PL-7K3M-9Q2X-HB4G") == "PL-7K3M-9Q2X-HB4G"
