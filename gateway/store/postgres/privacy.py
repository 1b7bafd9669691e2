"""``PrivacyRecords`` in the shared database (tables ``legal_hold``, ``erasure``,
``access_record``: migration 0007)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import asyncpg

from gateway.store.postgres.database import Database
from gateway.store.privacy import Access, Hold


class PostgresPrivacyRecords:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def hold(self, reference: str, by: str, note: str) -> bool:
        placed = await self._db.fetchval(
            "INSERT INTO legal_hold (reference, placed_by, note) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            reference,
            by,
            note,
        )
        return placed is not None

    async def release(self, reference: str) -> bool:
        released = await self._db.fetchval(
            "DELETE FROM legal_hold WHERE reference = $1 RETURNING 1", reference
        )
        return released is not None

    async def holds(self) -> list[Hold]:
        rows = await self._db.fetch(
            "SELECT reference, placed_at, placed_by, note FROM legal_hold ORDER BY placed_at"
        )
        return [_hold(row) for row in rows]

    async def hold_of(self, reference: str) -> Hold | None:
        row = await self._db.fetchrow(
            "SELECT reference, placed_at, placed_by, note FROM legal_hold WHERE reference = $1",
            reference,
        )
        return _hold(row) if row else None

    async def record_erasure(self, reference: str, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO erasure (reference, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            reference,
            at,
        )

    async def erased_at(self, reference: str) -> datetime | None:
        found: datetime | None = await self._db.fetchval(
            "SELECT erased_at FROM erasure WHERE reference = $1", reference
        )
        return found

    async def erased_among(self, references: Collection[str]) -> set[str]:
        if not references:
            return set()
        rows = await self._db.fetch(
            "SELECT reference FROM erasure WHERE reference = ANY($1::text[])", list(references)
        )
        return {row["reference"] for row in rows}

    async def record_access(self, access: Access) -> None:
        await self._db.execute(
            "INSERT INTO access_record (who, what, why, at, sha256, reference)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            access.who,
            access.what,
            access.why,
            access.at,
            access.sha256,
            access.reference,
        )

    async def accesses(self, reference: str, sha256s: list[str]) -> list[Access]:
        rows = await self._db.fetch(
            "SELECT who, what, why, at, sha256, reference FROM access_record"
            " WHERE reference = $1 OR sha256 = ANY($2::text[]) ORDER BY at, id",
            reference,
            sha256s,
        )
        return [Access(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def forget_accesses(self, reference: str) -> int:
        return await self._count("DELETE FROM access_record WHERE reference = $1", reference)

    async def prune_accesses(self, before: datetime) -> int:
        return await self._count("DELETE FROM access_record WHERE at < $1", before)

    async def _count(self, sql: str, *arguments: object) -> int:
        return len(await self._db.fetch(sql + " RETURNING 1", *arguments))


def _hold(row: asyncpg.Record) -> Hold:
    return Hold(row[0], row[1], row[2], row[3])
