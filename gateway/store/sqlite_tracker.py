"""The embedded ``TrackerStore``: SQLite, ``GATEWAY_DATA_DIR/state/tracker.sqlite`` (one machine).

See ``gateway.store.tracker`` for what it promises. ``apply`` is one transaction: the entries
are inserted first (into a temporary table, then ``INSERT OR IGNORE ... RETURNING``: the new
ones come back), which takes SQLite's write lock, so the complaints read and folded after are
not changed by another process before the transaction commits. Times are microseconds since
the epoch (exact: the fold compares them), dates ISO text. The office's notes for the person are
sealed (``gateway.store.sealed.TrackerNotes``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.errors import StateStoreError
from gateway.store.datakeys import distinct_values
from gateway.store.keyring import Keyring
from gateway.store.sealed import TrackerNotes
from gateway.store.sqlite import SqliteFile
from gateway.store.tracker import (
    STAND_IN,
    CountRow,
    DelayRow,
    EntryKind,
    Fold,
    Outcome,
    Overdue,
    PolicyFigures,
    RatingRow,
    TimelineEntry,
    TrackedComplaint,
    figures_queries,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracker_entry (
    event_id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    details TEXT NOT NULL,
    key_id TEXT
);
CREATE INDEX IF NOT EXISTS tracker_entry_reference ON tracker_entry (reference, at);
CREATE TABLE IF NOT EXISTS tracked_complaint (
    reference TEXT PRIMARY KEY,
    channel TEXT,
    kind TEXT,
    policy TEXT,
    received_at INTEGER,
    month TEXT,
    acknowledge_by TEXT,
    respond_by TEXT,
    complete INTEGER NOT NULL,
    reachable INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    acknowledge_delay INTEGER,
    acknowledged_in_time INTEGER,
    status TEXT NOT NULL,
    status_at INTEGER,
    status_note TEXT,
    status_event_id TEXT,
    answered_at INTEGER,
    answer_delay INTEGER,
    answered_in_time INTEGER,
    closed_at INTEGER,
    documents INTEGER NOT NULL,
    last_document_at INTEGER,
    rating INTEGER,
    rated_at INTEGER,
    status_note_key_id TEXT
);
CREATE INDEX IF NOT EXISTS tracked_complaint_open
    ON tracked_complaint (policy, respond_by) WHERE answered_at IS NULL;
CREATE INDEX IF NOT EXISTS tracked_complaint_figures ON tracked_complaint (
    policy, month, channel, complete, reachable, acknowledged_in_time, acknowledge_by,
    answered_in_time, respond_by, acknowledge_delay, answer_delay, rating
);
CREATE TEMP TABLE IF NOT EXISTS arriving (
    event_id TEXT NOT NULL,
    reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    details TEXT NOT NULL,
    key_id TEXT
);
"""
# Columns added since the first version of the file, added to an older file when opened: the
# key sealing the note of an entry and of a complaint (NULL: none, or in clear).
_ADDED_COLUMNS = {
    "tracker_entry": {"key_id": "TEXT"},
    "tracked_complaint": {"status_note_key_id": "TEXT"},
}
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS tracker_entry_key_id ON tracker_entry (key_id)",
    "CREATE INDEX IF NOT EXISTS tracked_complaint_status_note_key_id"
    " ON tracked_complaint (status_note_key_id)",
)
_ENTRY_COLUMNS = "event_id, reference, kind, at, details, key_id"
_FIELDS = fields(TrackedComplaint)
_COLUMNS = ", ".join(field.name for field in _FIELDS) + ", status_note_key_id"
_UPSERT = (
    f"INSERT OR REPLACE INTO tracked_complaint ({_COLUMNS})"  # noqa: S608 (constants only)
    f" VALUES ({', '.join('?' * (len(_FIELDS) + 1))})"
)
RESEAL_BATCH = 1000
_CHUNK = 500  # references per IN (...) look-up (SQLite's limit on parameters is 32,766)
_COUNTS, _DELAYS, _RATINGS = figures_queries(":policy", ":today")


class SqliteTrackerStore:
    """``keyring``: what seals the notes (given later by ``use_keyring``; in memory, without
    one, a throw-away key)."""

    def __init__(self, directory: Path | None, keyring: Keyring | None = None) -> None:
        path = directory / "tracker.sqlite" if directory else None
        self._file = SqliteFile(path, _SCHEMA)
        self._file.add_columns(_ADDED_COLUMNS, _ADDED_INDEXES)
        self._notes: TrackerNotes | None = None
        self._stand_in_row: tuple[Any, ...] = ()
        if keyring or directory is None:
            self.use_keyring(keyring or Keyring.ephemeral())
        # the indicators' scans (a fraction of a second over 100,000 complaints) on a connection
        # of their own: the folds and look-ups do not wait for them (WAL: readers beside writers)
        self._scans = SqliteFile(path, _SCHEMA) if path else self._file
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        self._file.close()
        if self._scans is not self._file:
            self._scans.close()

    def use_keyring(self, keyring: Keyring) -> None:
        self._notes = TrackerNotes(keyring)
        self._stand_in_row = _row(STAND_IN, self._notes)

    @property
    def notes(self) -> TrackerNotes:
        if self._notes is None:
            raise StateStoreError("tracker store: notes used before the keys were opened")
        return self._notes

    async def apply(self, entries: Sequence[TimelineEntry], fold: Fold) -> int:
        notes = self.notes
        rows = [
            (e.event_id, e.reference, str(e.kind), _micros(e.at), *sealed)
            for e in entries
            for sealed in [notes.sealed_details(e.event_id, e.details)]
        ]

        def run(db: sqlite3.Connection) -> int:
            new = _inserted(db, entries, rows)
            complaints = _complaints(db, sorted({entry.reference for entry in new}), notes)
            for entry in new:
                complaints[entry.reference] = fold(complaints.get(entry.reference), entry)
            db.executemany(_UPSERT, [_row(complaint, notes) for complaint in complaints.values()])
            return len(new)

        return await self._file.change(run)

    async def complaint(self, reference: str) -> TrackedComplaint | None:
        notes = self.notes
        row = await self._file.one(
            f"SELECT {_COLUMNS} FROM tracked_complaint WHERE reference = ?",  # noqa: S608
            (reference,),
        )
        found = row if row is not None else self._stand_in_row  # found or not: the same work
        complaint = _complaint(found, notes)
        return complaint if row is not None else None

    async def timeline(self, reference: str) -> list[TimelineEntry]:
        notes = self.notes
        rows = await self._file.read(
            lambda db: db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM tracker_entry"  # noqa: S608 (constants only)
                " WHERE reference = ? ORDER BY at, event_id",
                (reference,),
            ).fetchall()
        )
        return [_entry(row, notes) for row in rows]

    async def sealing_key_ids(self) -> set[str]:
        def query(db: sqlite3.Connection) -> set[str]:
            return distinct_values(db, "tracker_entry", "key_id") | distinct_values(
                db, "tracked_complaint", "status_note_key_id"
            )

        return await self._file.read(query)

    async def reseal(self) -> int:
        """Notes not sealed by the current key (or in clear) sealed by it; how many rows."""
        notes, done = self.notes, 0
        current = notes.keyring.current.id

        def reseal(db: sqlite3.Connection) -> int:
            entries = db.execute(_ENTRIES_NOT_SEALED_BY, (current, RESEAL_BATCH)).fetchall()
            for row in entries:
                entry = _entry(row, notes)
                details, key_id = notes.sealed_details(entry.event_id, entry.details)
                db.execute(
                    "UPDATE tracker_entry SET details = ?, key_id = ?"
                    " WHERE event_id = ? AND key_id IS ?",
                    (details, key_id, entry.event_id, row[5]),
                )
            complaints = db.execute(_NOTES_NOT_SEALED_BY, (current, RESEAL_BATCH)).fetchall()
            for reference, note, key_id in complaints:
                opened = notes.opened_note(reference, note, key_id)
                sealed, new_key_id = notes.sealed_note(reference, opened)
                db.execute(
                    "UPDATE tracked_complaint SET status_note = ?, status_note_key_id = ?"
                    " WHERE reference = ? AND status_note_key_id IS ?",
                    (sealed, new_key_id, reference, key_id),
                )
            return len(entries) + len(complaints)

        while changed := await self._file.change(reseal):
            done += changed
        return done

    async def policies(self) -> list[str]:
        rows = await self._file.read(
            lambda db: db.execute(
                "SELECT DISTINCT policy FROM tracked_complaint"
                " WHERE policy IS NOT NULL ORDER BY policy"  # set with the receipt
            ).fetchall()
        )
        return [row[0] for row in rows]

    async def figures(self, policy: str, today: date) -> PolicyFigures:
        named = {"policy": policy, "today": today.isoformat()}

        def query(db: sqlite3.Connection) -> tuple[list[Any], ...]:
            return tuple(db.execute(sql, named).fetchall() for sql in (_COUNTS, _DELAYS, _RATINGS))

        counts, delays, ratings = await self._scans.read(query)
        return PolicyFigures(
            policy=policy,
            today=today,
            counts=[
                CountRow(r[0], r[1], bool(r[2]), bool(r[3]), Outcome(r[4]), Outcome(r[5]), r[6])
                for r in counts
            ],
            delays=[DelayRow(r[0], r[1], bool(r[2]), r[3], r[4], r[5]) for r in delays],
            ratings=[RatingRow(*row) for row in ratings],
        )

    async def overdue(self, today: dict[str, date], limit: int = 10_000) -> list[Overdue]:
        def query(db: sqlite3.Connection) -> list[Any]:
            found: list[Any] = []
            for policy, day in today.items():
                found += db.execute(
                    "SELECT reference, policy, channel, respond_by, status FROM tracked_complaint"
                    " WHERE policy = ? AND answered_at IS NULL AND respond_by < ?"
                    " AND received_at IS NOT NULL ORDER BY respond_by, reference LIMIT ?",
                    (policy, day.isoformat(), limit),
                ).fetchall()
            return found

        rows = await self._file.read(query)
        overdue = [Overdue(r[0], r[1], r[2], date.fromisoformat(r[3]), r[4]) for r in rows]
        return sorted(overdue, key=lambda item: (item.respond_by, item.reference))[:limit]

    async def clear(self) -> None:
        def run(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM tracker_entry")
            db.execute("DELETE FROM tracked_complaint")

        await self._file.change(run)


_ENTRIES_NOT_SEALED_BY = (
    f"SELECT {_ENTRY_COLUMNS} FROM tracker_entry WHERE key_id IS NOT ?"  # noqa: S608 (constants only)
    " AND (key_id IS NOT NULL OR json_extract(details, '$.note') IS NOT NULL) LIMIT ?"
)
_NOTES_NOT_SEALED_BY = (
    "SELECT reference, status_note, status_note_key_id FROM tracked_complaint"
    " WHERE status_note IS NOT NULL AND status_note_key_id IS NOT ? LIMIT ?"
)


def _entry(row: Sequence[Any], notes: TrackerNotes) -> TimelineEntry:
    """A ``tracker_entry`` row (``_ENTRY_COLUMNS``), its note opened."""
    details = notes.opened_details(row[0], json.loads(row[4]), row[5])
    return TimelineEntry(row[0], row[1], EntryKind(row[2]), _time(row[3]), details)


def _inserted(
    db: sqlite3.Connection, entries: Sequence[TimelineEntry], rows: list[tuple[Any, ...]]
) -> list[TimelineEntry]:
    """Keep the entries; those not kept before (each once, in their order)."""
    db.executemany(f"INSERT INTO temp.arriving ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)  # noqa: S608
    new_ids = {
        row[0]
        for row in db.execute(
            f"INSERT OR IGNORE INTO tracker_entry ({_ENTRY_COLUMNS})"  # noqa: S608 (constants only)
            f" SELECT {_ENTRY_COLUMNS} FROM temp.arriving WHERE true RETURNING event_id"
        ).fetchall()
    }
    db.execute("DELETE FROM temp.arriving")
    new = []
    for entry in entries:
        if entry.event_id in new_ids:
            new_ids.discard(entry.event_id)
            new.append(entry)
    return new


def _complaints(
    db: sqlite3.Connection, references: list[str], notes: TrackerNotes
) -> dict[str, TrackedComplaint]:
    found: dict[str, TrackedComplaint] = {}
    for start in range(0, len(references), _CHUNK):
        chunk = references[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM tracked_complaint WHERE reference IN ({marks})",  # noqa: S608
            chunk,
        ).fetchall()
        for row in rows:
            complaint = _complaint(row, notes)
            found[complaint.reference] = complaint
    return found


def _row(complaint: TrackedComplaint, notes: TrackerNotes) -> tuple[Any, ...]:
    """The complaint's row (``_COLUMNS``), its note sealed."""
    note, key_id = notes.sealed_note(complaint.reference, complaint.status_note)
    sealed = dataclasses.replace(complaint, status_note=note)
    return (*(_stored(getattr(sealed, field.name)) for field in _FIELDS), key_id)


def _stored(value: Any) -> Any:
    if isinstance(value, datetime):
        return _micros(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _complaint(row: Sequence[Any], notes: TrackerNotes) -> TrackedComplaint:
    """A ``tracked_complaint`` row (``_COLUMNS``), its note opened."""
    values: dict[str, Any] = {}
    for field, value in zip(_FIELDS, row[:-1], strict=True):
        values[field.name] = _read(field.name, value)
    values["status_note"] = notes.opened_note(values["reference"], values["status_note"], row[-1])
    return TrackedComplaint(**values)


_TIMES = frozenset(name for name in (field.name for field in _FIELDS) if name.endswith("_at"))
_DATES = frozenset({"acknowledge_by", "respond_by"})
_BOOLS = frozenset({"complete", "reachable", "acknowledged_in_time", "answered_in_time"})


def _read(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return _time(value)
    if name in _DATES:
        return date.fromisoformat(value)
    if name in _BOOLS:
        return bool(value)
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
