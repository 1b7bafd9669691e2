"""Cross-channel duplicates: the same person sending a near-identical text within 30 days.

The same person: the same *valid* identifier, or the same *verified* email or phone. Near-identical:
Jaccard similarity of the texts' word 3-shingles >= 0.8 (``DUPLICATE_THRESHOLD``). Candidates
are only the same person's recent complaints (a handful), so similarity is computed exactly on
the stored shingle hashes rather than estimated with MinHash signatures.

A match never merges anything: the event gets the flag ``possible_duplicate`` and the earlier
reference; the case team decides. The index is SQLite under ``GATEWAY_DATA_DIR`` (survives
restarts); entries older than the window are pruned as new ones arrive.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from array import array
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

DUPLICATE_THRESHOLD = 0.8
WINDOW = timedelta(days=30)
SHINGLE_WORDS = 3

_WORD = re.compile(r"\w+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS duplicate_index (
    person_key TEXT NOT NULL,
    reference TEXT NOT NULL,
    received_at REAL NOT NULL,
    shingles BLOB NOT NULL,
    PRIMARY KEY (person_key, reference)
);
CREATE INDEX IF NOT EXISTS duplicate_index_time ON duplicate_index (received_at);
"""


def shingles(text: str) -> frozenset[int]:
    """Hashes of the text's overlapping 3-word sequences (lower case)."""
    words = _WORD.findall(text.casefold())
    if len(words) < SHINGLE_WORDS:
        return frozenset([_hash(" ".join(words))]) if words else frozenset()
    return frozenset(
        _hash(" ".join(words[i : i + SHINGLE_WORDS])) for i in range(len(words) - SHINGLE_WORDS + 1)
    )


def jaccard(first: frozenset[int], second: frozenset[int]) -> float:
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def _hash(shingle: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big", signed=True
    )


class DuplicateIndex:
    """The recent complaints of each person, by person key; safe to share between threads."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def find_and_record(
        self,
        person_keys: Iterable[str],
        reference: str,
        text: str,
        received_at: datetime,
    ) -> str | None:
        """The earliest near-identical complaint of the same person in the window, then record
        this one. Recording the same reference twice (a redelivery) changes nothing."""
        keys = sorted(set(person_keys))
        if not keys:
            return None
        own = shingles(text)
        at = received_at.timestamp()
        with self._lock, self._db:
            match = self._earliest_match(keys, reference, own, at)
            blob = array("q", sorted(own)).tobytes()
            self._db.executemany(
                "INSERT OR IGNORE INTO duplicate_index VALUES (?, ?, ?, ?)",
                [(key, reference, at, blob) for key in keys],
            )
            self._db.execute(
                "DELETE FROM duplicate_index WHERE received_at < ?",
                (at - 2 * WINDOW.total_seconds(),),
            )
        return match

    def _earliest_match(
        self, keys: list[str], reference: str, own: frozenset[int], at: float
    ) -> str | None:
        placeholders = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT reference, shingles FROM duplicate_index WHERE person_key IN ({placeholders})"  # noqa: S608 (placeholders only)
            " AND reference != ? AND received_at BETWEEN ? AND ? ORDER BY received_at",
            (*keys, reference, at - WINDOW.total_seconds(), at),
        )
        for earlier, blob in rows:
            stored = array("q")
            stored.frombytes(blob)
            if jaccard(own, frozenset(stored)) >= DUPLICATE_THRESHOLD:
                return str(earlier)
        return None
