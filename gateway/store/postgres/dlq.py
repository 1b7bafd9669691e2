"""The shared ``DlqStore`` on PostgreSQL (see ``gateway.store.dlq``; migration 0003).

A claim is one ``UPDATE ... WHERE`` the record is open and unclaimed (or its lease ran out):
the statement locks the row, and a second claim at once re-checks the condition once the first
committed, so exactly one replica wins. Leases run on the database's clock, which every replica
shares. A closing and its action are one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from gateway.store.dlq import (
    LEASE_S,
    LIST_LIMIT,
    AmbiguousId,
    DlqAction,
    DlqRecord,
    DlqStatus,
    ReasonSummary,
    id_prefix,
)
from gateway.store.postgres.database import Database

_COLUMNS = (
    "id, channel, reason_code, reason, details, source_key, source, source_id, source_uri,"
    " received_at, recorded_at, status, attempts, closed_by, closed_at, event_ids"
)
_UNCLAIMED = "(claimed_by IS NULL OR claimed_until < now())"
_ACTION = (
    "INSERT INTO dlq_action (record_id, action, actor, outcome, detail) VALUES ($1, $2, $3, $4, $5)"
)


class PostgresDlqStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @property
    def closed(self) -> bool:
        return self._db.pool.is_closing()

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def add(self, record: DlqRecord) -> bool:
        added = await self._db.fetchval(
            "INSERT INTO dlq_record (id, channel, reason_code, reason, details, source_key,"
            " source, source_id, source_uri, received_at, recorded_at)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (id) DO NOTHING RETURNING 1",
            record.id,
            record.channel,
            record.reason_code,
            record.reason,
            json.dumps(record.details),
            record.source_key,
            record.source,
            record.source_id,
            record.source_uri,
            record.received_at,
            record.recorded_at,
        )
        return added is not None

    async def get(self, id_or_prefix: str) -> DlqRecord | None:
        prefix = id_prefix(id_or_prefix)
        if prefix is None:
            return None
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM dlq_record WHERE id = $1",  # noqa: S608 (constants only)
            prefix,
        ) or await self._db.fetch(
            f"SELECT {_COLUMNS} FROM dlq_record WHERE id LIKE $1 LIMIT 2",  # noqa: S608
            prefix + "%",
        )
        if len(rows) > 1:
            raise AmbiguousId(id_or_prefix)
        return _record(rows[0]) if rows else None

    async def records(
        self,
        *,
        since: datetime | None = None,
        reason_code: str | None = None,
        status: DlqStatus | None = DlqStatus.OPEN,
        limit: int = LIST_LIMIT,
    ) -> list[DlqRecord]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM dlq_record"  # noqa: S608 (constants only)
            " WHERE ($1::timestamptz IS NULL OR recorded_at >= $1)"
            " AND ($2::text IS NULL OR reason_code = $2)"
            " AND ($3::text IS NULL OR status = $3)"
            " ORDER BY recorded_at DESC, id LIMIT $4",
            since,
            reason_code,
            str(status) if status is not None else None,
            limit,
        )
        return [_record(row) for row in rows]

    async def actions(self, record_id: str) -> list[DlqAction]:
        rows = await self._db.fetch(
            "SELECT record_id, action, actor, at, outcome, detail FROM dlq_action"
            " WHERE record_id = $1 ORDER BY id",
            record_id,
        )
        return [DlqAction(*row) for row in rows]

    async def claim(self, record_id: str, claimant: str, lease_s: float = LEASE_S) -> bool:
        claimed = await self._db.fetchval(
            "UPDATE dlq_record SET claimed_by = $2,"  # noqa: S608 (constants only)
            " claimed_until = now() + make_interval(secs => $3)"
            f" WHERE id = $1 AND status = 'open' AND {_UNCLAIMED} RETURNING 1",
            record_id,
            claimant,
            lease_s,
        )
        return claimed is not None

    async def finish(
        self, record_id: str, claimant: str, by: str, event_ids: list[str], detail: str = ""
    ) -> bool:
        return await self._changed(
            "UPDATE dlq_record SET status = 'redriven', attempts = attempts + 1,"
            " claimed_by = NULL, claimed_until = NULL, closed_by = $3, closed_at = now(),"
            " event_ids = $4::jsonb WHERE id = $1 AND status = 'open' AND claimed_by = $2"
            " RETURNING 1",
            (record_id, claimant, by, json.dumps(event_ids)),
            (record_id, "redrive", by, "redriven", detail),
        )

    async def release(
        self, record_id: str, claimant: str, by: str, reason_code: str, reason: str
    ) -> bool:
        return await self._changed(
            "UPDATE dlq_record SET attempts = attempts + 1, claimed_by = NULL,"
            " claimed_until = NULL, reason_code = $3, reason = $4"
            " WHERE id = $1 AND status = 'open' AND claimed_by = $2 RETURNING 1",
            (record_id, claimant, reason_code, reason),
            (record_id, "redrive", by, "still_rejected", f"{reason_code}: {reason}"),
        )

    async def unclaim(self, record_id: str, claimant: str) -> None:
        await self._db.execute(
            "UPDATE dlq_record SET claimed_by = NULL, claimed_until = NULL"
            " WHERE id = $1 AND claimed_by = $2",
            record_id,
            claimant,
        )

    async def dismiss(self, record_id: str, by: str, note: str = "") -> bool:
        return await self._changed(
            "UPDATE dlq_record SET status = 'dismissed', claimed_by = NULL,"  # noqa: S608
            " claimed_until = NULL, closed_by = $2, closed_at = now()"
            f" WHERE id = $1 AND status = 'open' AND {_UNCLAIMED} RETURNING 1",
            (record_id, by),
            (record_id, "dismiss", by, "dismissed", note),
        )

    async def open_summary(self) -> list[ReasonSummary]:
        rows = await self._db.fetch(
            "SELECT reason_code, count(*), min(recorded_at) FROM dlq_record"
            " WHERE status = 'open' GROUP BY reason_code ORDER BY reason_code"
        )
        return [ReasonSummary(row[0], int(row[1]), row[2]) for row in rows]

    async def _changed(self, sql: str, arguments: tuple[Any, ...], action: tuple[Any, ...]) -> bool:
        """Run ``sql``; True if it changed the row, and then ``action`` is kept with it."""
        async with self._db.connection() as connection, connection.transaction():
            changed = await connection.fetchval(sql, *arguments)
            if changed is not None:
                await connection.execute(_ACTION, *action)
        return changed is not None


def _record(row: asyncpg.Record) -> DlqRecord:
    return DlqRecord(
        id=row["id"],
        channel=row["channel"],
        reason_code=row["reason_code"],
        reason=row["reason"],
        details=json.loads(row["details"]),
        source_key=row["source_key"],
        source=row["source"],
        source_id=row["source_id"],
        source_uri=row["source_uri"],
        received_at=row["received_at"],
        recorded_at=row["recorded_at"],
        status=DlqStatus(row["status"]),
        attempts=int(row["attempts"]),
        closed_by=row["closed_by"],
        closed_at=row["closed_at"],
        event_ids=tuple(json.loads(row["event_ids"])),
    )
