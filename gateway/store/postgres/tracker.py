"""The shared ``TrackerStore`` on PostgreSQL (see ``gateway.store.tracker``; migration 0004).

``apply`` is one transaction in a fixed order, so that two callers (two trackers after a
rebalance, a rebuild beside the service) fold a complaint one after the other and never
deadlock: a row for every reference of the batch is made if missing (the empty state, what the
fold starts from), the rows are locked (``FOR UPDATE``, in reference order), the entries are
inserted (``ON CONFLICT DO NOTHING``: only the new ones come back), and the folded rows are
written. An entry belongs to one reference, so only the holder of that row inserts it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from datetime import date
from typing import Any

import asyncpg

from gateway.store.postgres.database import Connection, Database
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

_FIELDS = [field.name for field in fields(TrackedComplaint)]
_COLUMNS = ", ".join(_FIELDS)
_UPDATE = (
    "UPDATE tracked_complaint SET "  # noqa: S608 (constants only)
    + ", ".join(f"{name} = ${number}" for number, name in enumerate(_FIELDS[1:], start=2))
    + " WHERE reference = $1"
)
_COUNTS, _DELAYS, _RATINGS = figures_queries("$1", "$2")


class PostgresTrackerStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def closed(self) -> bool:
        return self._db.pool.is_closing()

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def apply(self, entries: Sequence[TimelineEntry], fold: Fold) -> int:
        if not entries:
            return 0
        references = sorted({entry.reference for entry in entries})
        async with self._db.connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO tracked_complaint (reference, complete, reachable, status, documents)"
                " SELECT r, true, true, 'received', 0 FROM unnest($1::text[]) AS r"
                " ON CONFLICT DO NOTHING",
                references,
            )
            complaints = await _locked(connection, references)
            new = await _inserted(connection, entries)
            changed: dict[str, TrackedComplaint] = {}
            for entry in new:
                changed[entry.reference] = fold(complaints[entry.reference], entry)
                complaints[entry.reference] = changed[entry.reference]
            if changed:
                await connection.executemany(
                    _UPDATE, [_row(complaint) for complaint in changed.values()]
                )
        return len(new)

    async def complaint(self, reference: str) -> TrackedComplaint | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM tracked_complaint WHERE reference = $1",  # noqa: S608
            reference,
        )
        complaint = _complaint(row if row is not None else _STAND_IN_ROW)  # found or not: alike
        return complaint if row is not None else None

    async def timeline(self, reference: str) -> list[TimelineEntry]:
        rows = await self._db.fetch(
            "SELECT event_id, reference, kind, at, details FROM tracker_entry"
            " WHERE reference = $1 ORDER BY at, event_id",
            reference,
        )
        return [
            TimelineEntry(row[0], row[1], EntryKind(row[2]), row[3], json.loads(row[4]))
            for row in rows
        ]

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


async def _locked(connection: Connection, references: list[str]) -> dict[str, TrackedComplaint]:
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM tracked_complaint"  # noqa: S608 (constants only)
        " WHERE reference = ANY($1::text[]) ORDER BY reference FOR UPDATE",
        references,
    )
    return {row["reference"]: _complaint(row) for row in rows}


async def _inserted(
    connection: Connection, entries: Sequence[TimelineEntry]
) -> list[TimelineEntry]:
    """The entries not kept before (each once, in their order)."""
    new_ids = {
        row[0]
        for row in await connection.fetch(
            "INSERT INTO tracker_entry (event_id, reference, kind, at, details)"
            " SELECT e, r, k, a, d::jsonb"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])"
            " AS t(e, r, k, a, d) ON CONFLICT DO NOTHING RETURNING event_id",
            [entry.event_id for entry in entries],
            [entry.reference for entry in entries],
            [str(entry.kind) for entry in entries],
            [entry.at for entry in entries],
            [json.dumps(entry.details) for entry in entries],
        )
    }
    new = []
    for entry in entries:
        if entry.event_id in new_ids:
            new_ids.discard(entry.event_id)
            new.append(entry)
    return new


_STAND_IN_ROW = asdict(STAND_IN)


def _row(complaint: TrackedComplaint) -> tuple[Any, ...]:
    return tuple(getattr(complaint, name) for name in _FIELDS)


def _complaint(row: asyncpg.Record | Mapping[str, Any]) -> TrackedComplaint:
    values: dict[str, Any] = {name: row[name] for name in _FIELDS}
    return TrackedComplaint(**values)
