"""The embedded ``DuplicateIndex``: SQLite under ``GATEWAY_DATA_DIR/state`` (one machine).

Several processes may share the file (the web workers, the mail channel): a commit by any other
connection changes SQLite's ``data_version``, and the rows kept in memory are then read again.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from gateway.normalizers.duplicates import MAX_CANDIDATES, WINDOW, earliest_similar

PRUNE_EVERY = 3600.0  # seconds of receipt time between two prunings of old entries
# 1: CRC-32 of the joined words; 2: rows by reference. An index of another version is rebuilt
# empty (what it loses: duplicates of complaints received before the upgrade go unflagged).
SCHEMA_VERSION = 3

# Rows kept in the order they are read (a person's, by time: WITHOUT ROWID clusters them), so a
# person's recent complaints are one short range of the file; one row per person and reference.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS duplicate_index (
    person_key TEXT NOT NULL,
    received_at REAL NOT NULL,
    reference TEXT NOT NULL,
    shingles BLOB NOT NULL,
    PRIMARY KEY (person_key, received_at, reference)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS duplicate_index_reference
    ON duplicate_index (person_key, reference);
CREATE INDEX IF NOT EXISTS duplicate_index_time ON duplicate_index (received_at);
"""


class _Row(NamedTuple):
    """One complaint of a person, in the index's order (time, then reference; compared as
    tuples are, in C)."""

    received_at: float
    reference: str
    shingles: bytes


class _RecentRows:
    """The rows of the persons seen lately, kept in memory so that most look-ups skip SQLite:
    all the rows of a person, or none (a person with more than ``PER_PERSON`` is read from the
    file each time), at most ``total`` rows, the persons seen longest ago dropped first."""

    PER_PERSON = 200

    def __init__(self, total: int) -> None:
        self._total = total
        self._by_person: OrderedDict[str, list[_Row]] = OrderedDict()
        self._size = 0
        self._too_many: set[str] = set()  # persons read from the file each time

    def get(self, key: str) -> list[_Row] | None:
        rows = self._by_person.get(key)
        if rows is not None:
            self._by_person.move_to_end(key)
        return rows

    def too_many(self, key: str) -> bool:
        return key in self._too_many

    def put(self, key: str, rows: list[_Row]) -> None:
        self.drop(key)
        if len(rows) > min(self.PER_PERSON, self._total):
            self._mark_too_many(key)
            return
        self._by_person[key] = rows
        self._size += len(rows)
        while self._size > self._total:
            _, dropped = self._by_person.popitem(last=False)
            self._size -= len(dropped)

    def add(self, key: str, row: _Row) -> None:
        """Record a row the file now holds (as INSERT OR IGNORE does: once per reference)."""
        rows = self._by_person.get(key)
        if rows is None or any(known.reference == row.reference for known in rows):
            return
        bisect.insort(rows, row)
        self._size += 1
        if len(rows) > min(self.PER_PERSON, self._total):
            self.drop(key)
            self._mark_too_many(key)

    def drop(self, key: str) -> None:
        rows = self._by_person.pop(key, None)
        self._size -= len(rows) if rows is not None else 0

    def _mark_too_many(self, key: str) -> None:
        if len(self._too_many) < max(self._total, 1):  # bounded; emptied with the rest
            self._too_many.add(key)

    def clear(self) -> None:
        self._by_person.clear()
        self._too_many.clear()
        self._size = 0


class SqliteDuplicateIndex:
    """The recent complaints of each person, by person key; safe to share between threads.

    Several processes may share the file (the web workers, the mail channel): a commit by any
    other connection changes SQLite's ``data_version``, and the rows kept in memory are then
    read again."""

    def __init__(self, path: Path | None, rows_in_memory: int = 20_000) -> None:
        """``rows_in_memory``: how many rows (some 600 bytes each) are kept to spare reading
        the file; 0 reads it every time."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            with self._db:
                self._db.execute("DROP TABLE IF EXISTS duplicate_index")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.executescript(_SCHEMA)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per complaint: after a power cut the index may miss its last entries, which
        # only means a duplicate goes unflagged; the events themselves are in Kafka.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")
        self._recent = _RecentRows(rows_in_memory)
        self._data_version = self._current_data_version()

    def close(self) -> None:
        self._db.close()

    def find_and_record(
        self,
        person_keys: Iterable[str],
        reference: str,
        own: bytes,
        received_at: datetime,
    ) -> str | None:
        """The earliest near-identical complaint of the same person in the window (``own``:
        this text's ``shingles``), then record this one. Recording the same reference twice (a
        redelivery) changes nothing."""
        keys = sorted(set(person_keys))
        if not keys:
            return None
        at = received_at.timestamp()
        with self._lock, self._db:
            if (version := self._current_data_version()) != self._data_version:
                self._recent.clear()  # another process wrote: what is kept may be stale
                self._data_version = version
            candidates = self._candidates(keys, reference, at)
            self._db.executemany(
                "INSERT OR IGNORE INTO duplicate_index VALUES (?, ?, ?, ?)",
                [(key, at, reference, own) for key in keys],
            )
            for key in keys:
                self._recent.add(key, _Row(at, reference, own))
            if at - self._pruned_at >= PRUNE_EVERY:
                self._db.execute(
                    "DELETE FROM duplicate_index WHERE received_at < ?",
                    (at - 2 * WINDOW.total_seconds(),),
                )
                self._recent.clear()
                self._pruned_at = at
        return earliest_similar(own, candidates)

    def _candidates(self, keys: list[str], reference: str, at: float) -> list[_Row]:
        """The person's most recent complaints in the window but this one, newest first: from
        memory when every key's rows are there, else from the file (the same rows)."""
        kept = [self._rows_of(key) for key in keys]
        since = at - WINDOW.total_seconds()
        if any(rows is None for rows in kept):
            return self._candidates_from_file(keys, reference, since, at)
        in_window = [
            row
            for rows in kept
            for row in rows or ()
            if row.reference != reference and since <= row.received_at <= at
        ]
        in_window.sort(reverse=True)
        return in_window[:MAX_CANDIDATES]

    def _rows_of(self, key: str) -> list[_Row] | None:
        rows = self._recent.get(key)
        if rows is None and not self._recent.too_many(key):
            found = self._db.execute(
                "SELECT received_at, reference, shingles FROM duplicate_index"
                " WHERE person_key = ? ORDER BY received_at, reference LIMIT ?",
                (key, _RecentRows.PER_PERSON + 1),
            )
            self._recent.put(key, [_Row(*row) for row in found])
            rows = self._recent.get(key)
        return rows

    def _candidates_from_file(
        self, keys: list[str], reference: str, since: float, at: float
    ) -> list[_Row]:
        placeholders = ",".join("?" * len(keys))
        rows = self._db.execute(
            "SELECT received_at, reference, shingles FROM duplicate_index"  # noqa: S608 (placeholders only)
            f" WHERE person_key IN ({placeholders}) AND reference != ?"
            " AND received_at BETWEEN ? AND ?"
            " ORDER BY received_at DESC, reference DESC LIMIT ?",
            (*keys, reference, since, at, MAX_CANDIDATES),
        )
        return [_Row(*row) for row in rows]

    def _current_data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])
