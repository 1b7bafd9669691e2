"""``ComplaintData`` in the shared database: every table is in it, one statement dates a
complaint from all of them (see ``gateway.store.complaint_data``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from gateway.store.catalog import sha256_of_uri
from gateway.store.complaint_data import DlqCopy, DueObject, Kind
from gateway.store.postgres.database import Database

CLOCK = """
WITH seen AS (
    SELECT reference, recorded AS at FROM stored_object
    UNION ALL SELECT reference, received_at FROM tracked_complaint WHERE received_at IS NOT NULL
    UNION ALL SELECT reference, updated FROM notifier_contacts
    UNION ALL SELECT reference, updated FROM notifications
    UNION ALL SELECT reference, to_timestamp(received_at) FROM duplicate_index
), clock AS (
    SELECT s.reference, coalesce(max(t.closed_at), min(s.at)) AS since
    FROM seen s LEFT JOIN tracked_complaint t ON t.reference = s.reference
    GROUP BY s.reference
)
"""
_DUE_SELECT = """
SELECT sha256, array_agg(reference) FILTER (WHERE due), bool_and(due)
FROM (
    SELECT o.sha256, o.reference,
        (c.since < CASE o.role WHEN 'raw' THEN $1::timestamptz ELSE $2::timestamptz END
         AND NOT EXISTS (SELECT 1 FROM legal_hold h WHERE h.reference = o.reference)) AS due
    FROM stored_object o JOIN clock c ON c.reference = o.reference
) rows
GROUP BY sha256 HAVING bool_or(due) ORDER BY sha256
"""
DUE_OBJECTS = "\n".join([CLOCK, _DUE_SELECT])
HAVING = {
    "state": """
        SELECT reference FROM notifier_contacts UNION SELECT reference FROM notifications
        UNION SELECT reference FROM complaint_contacts
        UNION SELECT reference FROM duplicate_index""",
    "tracker": "SELECT reference FROM tracked_complaint UNION SELECT reference FROM tracker_entry",
}
STATE_TABLES = {
    "contacts": "notifier_contacts",
    "notifications": "notifications",
    "contact_hashes": "complaint_contacts",
    "duplicates": "duplicate_index",
}
_DLQ_DUE = (
    "SELECT id, source_uri FROM dlq_record WHERE recorded_at < $1"
    " AND coalesce(details->>'reference', '') NOT IN (SELECT reference FROM legal_hold)"
    " ORDER BY id"
)


class PostgresComplaintData:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def due_objects(self, cutoffs: Mapping[str, datetime]) -> list[DueObject]:
        rows = await self._db.fetch(DUE_OBJECTS, cutoffs["raw"], cutoffs["attachment"])
        return [DueObject(row[0], tuple(row[1]), bool(row[2])) for row in rows]

    async def due_references(self, kind: Kind, before: datetime) -> list[str]:
        sql = (
            f"{CLOCK}, having_rows AS ({HAVING[kind]})"  # noqa: S608 (constants only)
            " SELECT h.reference FROM having_rows h LEFT JOIN clock c ON c.reference = h.reference"
            " WHERE (c.since < $1 OR c.since IS NULL)"
            " AND h.reference NOT IN (SELECT reference FROM legal_hold) ORDER BY h.reference"
        )
        return [str(row[0]) for row in await self._db.fetch(sql, before)]

    async def due_dlq(self, before: datetime) -> list[DlqCopy]:
        return _copies(await self._db.fetch(_DLQ_DUE, before))

    async def objects_of(self, reference: str) -> list[tuple[str, str]]:
        rows = await self._db.fetch(
            "SELECT sha256, role FROM stored_object WHERE reference = $1 ORDER BY sha256",
            reference,
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def holders(self, sha256: str) -> set[str]:
        rows = await self._db.fetch(
            "SELECT DISTINCT reference FROM stored_object WHERE sha256 = $1", sha256
        )
        return {str(row[0]) for row in rows}

    async def dlq_needs(self, sha256: str, besides: Sequence[str] = ()) -> bool:
        found = await self._db.fetchval(
            "SELECT 1 FROM dlq_record WHERE source_uri LIKE $1 AND NOT (id = ANY($2::text[]))"
            " LIMIT 1",
            f"%{sha256}",
            list(besides),
        )
        return found is not None

    async def dlq_of(self, reference: str) -> list[DlqCopy]:
        rows = await self._db.fetch(
            "SELECT id, source_uri FROM dlq_record WHERE details->>'reference' = $1 ORDER BY id",
            reference,
        )
        return _copies(rows)

    async def forget_rows(self, sha256: str, references: Sequence[str]) -> int:
        return await self._count(
            "DELETE FROM stored_object WHERE sha256 = $1 AND reference = ANY($2::text[])",
            sha256,
            list(references),
        )

    async def forget_catalog(self, reference: str) -> int:
        return await self._count("DELETE FROM stored_object WHERE reference = $1", reference)

    async def forget_state(self, reference: str, *, answers: bool = False) -> dict[str, int]:
        counts = {
            name: await self._count(f"DELETE FROM {table} WHERE reference = $1", reference)  # noqa: S608 (constants)
            for name, table in STATE_TABLES.items()
        }
        if answers:
            counts["answers"] = await self._count(
                "DELETE FROM idempotency WHERE response->>'reference' = $1", reference
            )
        return counts

    async def forget_tracker(self, reference: str) -> int:
        entries = await self._count("DELETE FROM tracker_entry WHERE reference = $1", reference)
        standing = await self._count(
            "DELETE FROM tracked_complaint WHERE reference = $1", reference
        )
        return entries + standing

    async def forget_dlq(self, record_ids: Sequence[str]) -> int:
        ids = list(record_ids)
        await self._count("DELETE FROM dlq_action WHERE record_id = ANY($1::text[])", ids)
        return await self._count("DELETE FROM dlq_record WHERE id = ANY($1::text[])", ids)

    async def compact(self) -> None:
        """Deleted rows are PostgreSQL's to vacuum (autovacuum; its WAL and backups are the
        operator's)."""

    async def prune(self, reads_before: datetime, processed_before: datetime) -> dict[str, int]:
        return {
            "object_reads": await self._count(
                "DELETE FROM object_read WHERE read_at < $1", reads_before
            ),
            "processed_inputs": await self._count(
                "DELETE FROM processed_source WHERE processed < $1", processed_before
            ),
        }

    async def _count(self, sql: str, *arguments: object) -> int:
        return len(await self._db.fetch(sql + " RETURNING 1", *arguments))


def _copies(rows: Sequence[asyncpg.Record]) -> list[DlqCopy]:
    return [DlqCopy(str(row[0]), sha256_of_uri(row[1])) for row in rows]
