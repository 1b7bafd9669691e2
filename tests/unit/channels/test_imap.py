"""What the IMAP channel reads from server responses, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.channels.imap_keyword_claims import modified_uids, stored_sequences, uid_set
from gateway.channels.imap_shared import imap_date


def test_a_conditional_store_answers_the_new_sequence_of_each_message_it_stored() -> None:
    lines: list[bytes | bytearray | str] = [
        b"3 FETCH (UID 41 MODSEQ (1210))",
        b"4 FETCH (MODSEQ (1211) UID 42)",  # any order of the items
        b"5 FETCH (FLAGS (\\Seen) UID 43)",  # no MODSEQ: nothing was stored
        b"OK [MODIFIED 44] Conditional STORE failed",
    ]
    assert stored_sequences(lines) == {41: 1210, 42: 1211}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([b"OK [MODIFIED 7,9] Conditional STORE failed"], {7, 9}),
        ([b"OK [MODIFIED 1:3,7] Conditional STORE failed"], {1, 2, 3, 7}),
        ([b"OK Store completed."], set()),  # every claim won
        ([b"2 FETCH (UID 5 MODSEQ (9))", b"OK Store completed."], set()),
    ],
)
def test_the_messages_a_conditional_store_refused_come_from_modified(
    lines: list[bytes | bytearray | str], expected: set[int]
) -> None:
    assert modified_uids(lines) == expected


def test_a_range_either_way_round_is_the_same_set() -> None:
    assert uid_set("3:1") == uid_set("1:3") == [1, 2, 3]


def _uid_set(uids: list[int]) -> str:
    """The compact form a server writes: runs as ``first:last``."""
    runs: list[list[int]] = []
    for uid in sorted(uids):
        if runs and runs[-1][1] == uid - 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(f"{first}:{last}" if first != last else str(first) for first, last in runs)


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=50, unique=True))
def test_every_uid_of_a_set_is_read_back(uids: list[int]) -> None:
    line = f"OK [MODIFIED {_uid_set(uids)}] Conditional STORE failed".encode()
    assert sorted(modified_uids([line])) == sorted(uids)


def test_search_dates_are_written_in_english_whatever_the_locale() -> None:
    assert imap_date(datetime(2026, 12, 1, 23, 59, tzinfo=UTC)) == "1-Dec-2026"
    assert imap_date(datetime(2027, 2, 28, tzinfo=UTC)) == "28-Feb-2027"
