"""The shared ``TrackerStore`` on PostgreSQL (see ``gateway.store.tracker``; migration 0004).

``apply`` is one transaction in a fixed order, so that two callers (two trackers after a
rebalance, a rebuild beside the service) fold a complaint one after the other and never
deadlock: a row for every reference of the batch is made if missing (the empty state, what the
fold starts from), the rows are locked (``FOR UPDATE``, in reference order), the entries are
inserted (``ON CONFLICT DO NOTHING``: only the new ones come back), and the folded rows are
written. An entry belongs to one reference, so only the holder of that row inserts it. The
office's notes for the person are sealed (``gateway.store.sealed.TrackerNotes``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date
from typing import Any

import asyncpg

from gateway.errors import StateStoreError
from gateway.store.datakeys import distinct_query
from gateway.store.keyring import Keyring
from gateway.store.postgres.database import Connection, Database
from gateway.store.sealed import TrackerNotes
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

_FIELDS = [*(field.name for field in fields(TrackedComplaint)), "status_note_key_id"]
_COLUMNS = ", ".join(_FIELDS)
_ENTRY_COLUMNS = "event_id, reference, kind, at, details, key_id"
_UPDATE = (
    "UPDATE tracked_complaint SET "  # noqa: S608 (constants only)
    + ", ".join(f"{name} = ${number}" for number, name in enumerate(_FIELDS[1:], start=2))
    + " WHERE reference = $1"
)
_COUNTS, _DELAYS, _RATINGS = figures_queries("$1", "$2")
_ENTRIES_NOT_SEALED_BY = (
    f"SELECT {_ENTRY_COLUMNS} FROM tracker_entry WHERE key_id IS DISTINCT FROM $1"  # noqa: S608 (constants only)
    " AND (key_id IS NOT NULL OR details->>'note' IS NOT NULL) LIMIT $2"
)
_NOTES_NOT_SEALED_BY = (
    "SELECT reference, status_note, status_note_key_id FROM tracked_complaint"
    " WHERE status_note IS NOT NULL AND status_note_key_id IS DISTINCT FROM $1 LIMIT $2"
)
RESEAL_BATCH = 1000


class PostgresTrackerStore:
    """Notes sealed with ``keyring`` (given by ``use_keyring`` once the keys are open)."""

    def __init__(self, database: Database, keyring: Keyring | None = None) -> None:
        self._db = database
        self._notes: TrackerNotes | None = None
        self._stand_in_row: dict[str, Any] = {}
        if keyring is not None:
            self.use_keyring(keyring)

    def use_keyring(self, keyring: Keyring) -> None:
        self._notes = TrackerNotes(keyring)
        self._stand_in_row = dict(zip(_FIELDS, _row(STAND_IN, self._notes), strict=True))

    @property
    def notes(self) -> TrackerNotes:
        if self._notes is None:
            raise StateStoreError("tracker store: notes used before the keys were opened")
        return self._notes

    @property
    def closed(self) -> bool:
        return self._db.pool.is_closing()

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def apply(self, entries: Sequence[TimelineEntry], fold: Fold) -> int:
        if not entries:
            return 0
        references = sorted({entry.reference for entry in entries})
        notes = self.notes
        async with self._db.connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO tracked_complaint (reference, complete, reachable, status, documents)"
                " SELECT r, true, true, 'received', 0 FROM unnest($1::text[]) AS r"
                " ON CONFLICT DO NOTHING",
                references,
            )
            complaints = await _locked(connection, references, notes)
            new = await _inserted(connection, entries, notes)
            changed: dict[str, TrackedComplaint] = {}
            for entry in new:
                changed[entry.reference] = fold(complaints[entry.reference], entry)
                complaints[entry.reference] = changed[entry.reference]
            if changed:
                await connection.executemany(
                    _UPDATE, [_row(complaint, notes) for complaint in changed.values()]
                )
        return len(new)

    async def complaint(self, reference: str) -> TrackedComplaint | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM tracked_complaint WHERE reference = $1",  # noqa: S608
            reference,
        )
        found = row if row is not None else self._stand_in_row  # found or not: the same work
        complaint = _complaint(found, self.notes)
        return complaint if row is not None else None

    async def timeline(self, reference: str) -> list[TimelineEntry]:
        rows = await self._db.fetch(
            f"SELECT {_ENTRY_COLUMNS} FROM tracker_entry"  # noqa: S608 (constants only)
            " WHERE reference = $1 ORDER BY at, event_id",
            reference,
        )
        return [_entry(row, self.notes) for row in rows]

    async def sealing_key_ids(self) -> set[str]:
        ids: set[str] = set()
        for table, column in (
            ("tracker_entry", "key_id"),
            ("tracked_complaint", "status_note_key_id"),
        ):
            ids |= {str(row[0]) for row in await self._db.fetch(distinct_query(table, column))}
        return ids

    async def reseal(self) -> int:
        """Notes not sealed by the current key (or in clear) sealed by it; how many rows."""
        notes, done = self.notes, 0
        current = notes.keyring.current.id
        while entries := await self._db.fetch(_ENTRIES_NOT_SEALED_BY, current, RESEAL_BATCH):
            for row in entries:
                entry = _entry(row, notes)
                details, key_id = notes.sealed_details(entry.event_id, entry.details)
                await self._db.execute(
                    "UPDATE tracker_entry SET details = $1::jsonb, key_id = $2"
                    " WHERE event_id = $3 AND key_id IS NOT DISTINCT FROM $4",
                    details,
                    key_id,
                    entry.event_id,
                    row[5],
                )
            done += len(entries)
        while complaints := await self._db.fetch(_NOTES_NOT_SEALED_BY, current, RESEAL_BATCH):
            for reference, note, key_id in complaints:
                sealed, new_key_id = notes.sealed_note(
                    reference, notes.opened_note(reference, note, key_id)
                )
                await self._db.execute(
                    "UPDATE tracked_complaint SET status_note = $1, status_note_key_id = $2"
                    " WHERE reference = $3 AND status_note_key_id IS NOT DISTINCT FROM $4",
                    sealed,
                    new_key_id,
                    reference,
                    key_id,
                )
            done += len(complaints)
        return done

    async def policies(self) -> list[str]:
        rows = await self._db.fetch(
            "SELECT DISTINCT policy FROM tracked_complaint"
            " WHERE policy IS NOT NULL ORDER BY policy"  # set with the receipt
        )
        return [row[0] for row in rows]

    async def figures(self, policy: str, today: date) -> PolicyFigures:
        async with self._db.connection() as connection:
            counts = await connection.fetch(_COUNTS, policy, today)
            delays = await connection.fetch(_DELAYS, policy)
            ratings = await connection.fetch(_RATINGS, policy)
        return PolicyFigures(
            policy=policy,
            today=today,
            counts=[
                CountRow(r[0], r[1], r[2], r[3], Outcome(r[4]), Outcome(r[5]), int(r[6]))
                for r in counts
            ],
            delays=[DelayRow(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in delays],
            ratings=[RatingRow(r[0], r[1], r[2], int(r[3])) for r in ratings],
        )

    async def overdue(self, today: dict[str, date], limit: int = 10_000) -> list[Overdue]:
        rows = await self._db.fetch(
            "SELECT c.reference, c.policy, c.channel, c.respond_by, c.status"
            " FROM tracked_complaint c"
            " JOIN unnest($1::text[], $2::date[]) AS t(policy, today) ON c.policy = t.policy"
            " WHERE c.answered_at IS NULL AND c.respond_by < t.today"
            " AND c.received_at IS NOT NULL ORDER BY c.respond_by, c.reference LIMIT $3",
            list(today),
            list(today.values()),
            limit,
        )
        return [Overdue(*row) for row in rows]

    async def clear(self) -> None:
        async with self._db.connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM tracker_entry")
            await connection.execute("DELETE FROM tracked_complaint")


async def _locked(
    connection: Connection, references: list[str], notes: TrackerNotes
) -> dict[str, TrackedComplaint]:
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM tracked_complaint"  # noqa: S608 (constants only)
        " WHERE reference = ANY($1::text[]) ORDER BY reference FOR UPDATE",
        references,
    )
    return {row["reference"]: _complaint(row, notes) for row in rows}


async def _inserted(
    connection: Connection, entries: Sequence[TimelineEntry], notes: TrackerNotes
) -> list[TimelineEntry]:
    """The entries not kept before (each once, in their order)."""
    sealed = [notes.sealed_details(entry.event_id, entry.details) for entry in entries]
    new_ids = {
        row[0]
        for row in await connection.fetch(
            f"INSERT INTO tracker_entry ({_ENTRY_COLUMNS})"  # noqa: S608 (constants only)
            " SELECT e, r, k, a, d::jsonb, i FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::timestamptz[], $5::text[], $6::text[])"
            " AS t(e, r, k, a, d, i) ON CONFLICT DO NOTHING RETURNING event_id",
            [entry.event_id for entry in entries],
            [entry.reference for entry in entries],
            [str(entry.kind) for entry in entries],
            [entry.at for entry in entries],
            [details for details, _ in sealed],
            [key_id for _, key_id in sealed],
        )
    }
    new = []
    for entry in entries:
        if entry.event_id in new_ids:
            new_ids.discard(entry.event_id)
            new.append(entry)
    return new


def _entry(row: asyncpg.Record, notes: TrackerNotes) -> TimelineEntry:
    """A ``tracker_entry`` row (``_ENTRY_COLUMNS``), its note opened."""
    details = notes.opened_details(row[0], json.loads(row[4]), row[5])
    return TimelineEntry(row[0], row[1], EntryKind(row[2]), row[3], details)


def _row(complaint: TrackedComplaint, notes: TrackerNotes) -> tuple[Any, ...]:
    """The complaint's row (``_FIELDS``), its note sealed."""
    note, key_id = notes.sealed_note(complaint.reference, complaint.status_note)
    sealed = dataclasses.replace(complaint, status_note=note)
    return (*(getattr(sealed, name) for name in _FIELDS[:-1]), key_id)


def _complaint(row: asyncpg.Record | Mapping[str, Any], notes: TrackerNotes) -> TrackedComplaint:
    """A ``tracked_complaint`` row, its note opened."""
    values: dict[str, Any] = {name: row[name] for name in _FIELDS[:-1]}
    values["status_note"] = notes.opened_note(
        values["reference"], values["status_note"], row["status_note_key_id"]
    )
    return TrackedComplaint(**values)
