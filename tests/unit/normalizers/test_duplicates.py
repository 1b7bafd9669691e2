"""Cross-channel duplicates: same person, near-identical text, within 30 days; kept on disk."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.normalizers.duplicates import (
    DUPLICATE_THRESHOLD,
    jaccard,
    jaccards_against,
    pack,
    shingles,
)
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex

TEXT = (
    "Bonjour, j'ai demandé le renouvellement de ma carte d'assurance maladie en août et je ne "
    "l'ai toujours pas reçue malgré trois appels au service à la clientèle."
)
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_near_identical_texts_pass_the_threshold_and_different_ones_do_not() -> None:
    assert jaccard(shingles(TEXT), shingles(TEXT + " Merci.")) >= DUPLICATE_THRESHOLD
    other = "Je souhaite signaler un problème d'accueil au bureau de Laval la semaine dernière."
    assert jaccard(shingles(TEXT), shingles(other)) < DUPLICATE_THRESHOLD


def test_given_the_same_person_and_text_within_30_days_then_the_earlier_reference() -> None:
    index = SqliteDuplicateIndex(None)
    assert index.find_and_record(["email:a@b.org"], "PL-1", shingles(TEXT), T0) is None
    later = T0 + timedelta(days=10)
    assert (
        index.find_and_record(["email:a@b.org"], "PL-2", shingles(TEXT + " Merci."), later)
        == "PL-1"
    )


def test_given_another_person_or_another_text_or_too_late_then_no_duplicate() -> None:
    index = SqliteDuplicateIndex(None)
    index.find_and_record(["id:ca-qc-ramq:TREM85031512"], "PL-1", shingles(TEXT), T0)
    assert (
        index.find_and_record(["email:other@b.org"], "PL-2", shingles(TEXT), T0 + timedelta(days=1))
        is None
    )
    assert (
        index.find_and_record(
            ["id:ca-qc-ramq:TREM85031512"], "PL-3", shingles("Tout autre sujet ici."), T0
        )
        is None
    )
    assert (
        index.find_and_record(
            ["id:ca-qc-ramq:TREM85031512"], "PL-4", shingles(TEXT), T0 + timedelta(days=31)
        )
        is None
    )


def test_given_a_redelivery_of_the_same_complaint_then_it_is_not_its_own_duplicate() -> None:
    index = SqliteDuplicateIndex(None)
    assert index.find_and_record(["email:a@b.org"], "PL-1", shingles(TEXT), T0) is None
    assert index.find_and_record(["email:a@b.org"], "PL-1", shingles(TEXT), T0) is None


def test_the_index_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "duplicates.sqlite"
    first = SqliteDuplicateIndex(path)
    first.find_and_record(["phone:+15145550123"], "PL-1", shingles(TEXT), T0)
    first.close()
    again = SqliteDuplicateIndex(path)
    assert (
        again.find_and_record(
            ["phone:+15145550123"], "PL-2", shingles(TEXT), T0 + timedelta(hours=1)
        )
        == "PL-1"
    )
    again.close()


def test_given_no_person_key_then_nothing_is_recorded_or_matched() -> None:
    index = SqliteDuplicateIndex(None)
    assert index.find_and_record([], "PL-1", shingles(TEXT), T0) is None
    assert index.find_and_record([], "PL-2", shingles(TEXT), T0) is None


def test_given_three_matching_complaints_then_the_earliest_is_named() -> None:
    index = SqliteDuplicateIndex(None)
    for day, reference in enumerate(["PL-1", "PL-2", "PL-3"]):
        index.find_and_record(["email:a@b.org"], reference, shingles(TEXT), T0 + timedelta(day))
    assert (
        index.find_and_record(["email:a@b.org"], "PL-4", shingles(TEXT), T0 + timedelta(days=5))
        == "PL-1"
    )


@given(
    st.frozensets(st.integers(0, 2**32 - 1), max_size=60),
    st.lists(st.frozensets(st.integers(0, 2**32 - 1), max_size=60), max_size=5),
    st.data(),
)
def test_jaccards_against_stored_sets_are_those_of_the_sets(
    own: frozenset[int], others: list[frozenset[int]], data: st.DataObject
) -> None:
    near_copies = [  # some hashes out, some in: the pairs that come near the threshold
        frozenset(sorted(own)[data.draw(st.integers(0, 8)) :]) | other for other in others
    ]
    stored = [pack(other) for other in others + near_copies]
    figures = jaccards_against(pack(own), stored)
    assert list(figures) == pytest.approx(
        [set_jaccard(own, other) for other in others + near_copies]
    )


def set_jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    return len(first & second) / len(first | second) if first and second else 0.0


def test_shingles_are_the_same_in_another_process_and_word_order_counts() -> None:
    program = "import sys; from gateway.normalizers.duplicates import shingles; "
    program += "sys.stdout.write(shingles(sys.argv[1]).hex())"
    other = subprocess.run(  # another hash seed: str hashes differ, ours must not
        [sys.executable, "-c", program, TEXT],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert bytes.fromhex(other.stdout) == shingles(TEXT)
    assert shingles("un deux trois quatre") != shingles("quatre trois deux un")


def test_given_an_index_of_an_older_hashing_then_its_entries_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "duplicates.sqlite"
    SqliteDuplicateIndex(path).find_and_record(["email:a@b.org"], "PL-1", shingles(TEXT), T0)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 1")
    again = SqliteDuplicateIndex(path)
    assert again.find_and_record(["email:a@b.org"], "PL-2", shingles(TEXT), T0) is None
    assert again.find_and_record(["email:a@b.org"], "PL-3", shingles(TEXT), T0) == "PL-2"


@given(st.lists(st.sampled_from(["a", "b", "c", "plainte", "délai", "ça"]), max_size=40))
def test_shingles_are_distinct_and_sorted_as_stored(words: list[str]) -> None:
    packed = shingles(" ".join(words))
    hashes = [int.from_bytes(packed[n : n + 4], sys.byteorder) for n in range(0, len(packed), 4)]
    assert hashes == sorted(set(hashes))
    assert packed == pack(frozenset(hashes))
    assert bool(packed) is bool(words)


TEXTS = [TEXT, TEXT + " Merci.", "Tout autre sujet, une plainte sur l'accueil au bureau de Laval."]
OPERATIONS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["email:a@b.org", "phone:+15145550123", "id:x"]), max_size=2),
        st.sampled_from([f"PL-{n}" for n in range(6)]),
        st.sampled_from(TEXTS),
        st.sampled_from([0, 0, 1, 10, 29, 31, 70]),  # days after T0: in and out of the window
    ),
    max_size=25,
)


@given(OPERATIONS, st.sampled_from([20_000, 3, 1]))
def test_property_rows_kept_in_memory_give_the_answers_of_the_file(
    operations: list[tuple[list[str], str, str, int]], rows_in_memory: int
) -> None:
    in_memory, from_file = SqliteDuplicateIndex(None, rows_in_memory), SqliteDuplicateIndex(None, 0)
    for keys, reference, text, day in operations:
        at = T0 + timedelta(days=day)
        assert in_memory.find_and_record(keys, reference, shingles(text), at) == (
            from_file.find_and_record(keys, reference, shingles(text), at)
        )


def test_given_two_processes_on_one_file_then_each_sees_what_the_other_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "duplicates.sqlite"
    web, mail = SqliteDuplicateIndex(path), SqliteDuplicateIndex(path)
    minutes = [T0 + timedelta(minutes=n) for n in range(4)]  # within an hour: no pruning between
    mail.find_and_record(["email:a@b.org"], "PL-1", shingles("Autre chose."), minutes[0])
    mail.find_and_record(["email:a@b.org"], "PL-2", shingles("Encore autre chose."), minutes[1])
    web.find_and_record(["email:a@b.org"], "PL-3", shingles(TEXT), minutes[2])
    assert mail.find_and_record(["email:a@b.org"], "PL-4", shingles(TEXT), minutes[3]) == "PL-3"
