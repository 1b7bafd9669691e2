"""``DataKeyStore`` in the shared database (table ``object_key``, migration 0005): every
replica opens the objects any replica sealed."""

from __future__ import annotations

import asyncpg

from gateway.store.datakeys import MASTER_IDS, WrappedKey
from gateway.store.postgres.database import Database

_COLUMNS = "key_id, sha256, master_key_id, wrapped"


class PostgresDataKeys:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def add(self, key: WrappedKey) -> None:
        await self._db.execute(
            f"INSERT INTO object_key ({_COLUMNS}) VALUES ($1, $2, $3, $4)"  # noqa: S608 (constants only)
            " ON CONFLICT DO NOTHING",
            key.key_id,
            key.sha256,
            key.master_key_id,
            key.wrapped,
        )

    async def key(self, key_id: str) -> WrappedKey | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM object_key WHERE key_id = $1",  # noqa: S608 (constants only)
            key_id,
        )
        return _key(row) if row else None

    async def delete_keys_of(self, sha256: str) -> int:
        deleted = await self._db.fetch(
            "DELETE FROM object_key WHERE sha256 = $1 RETURNING 1", sha256
        )
        return len(deleted)

    async def master_key_ids(self) -> set[str]:
        return {str(row[0]) for row in await self._db.fetch(MASTER_IDS)}

    async def counts(self) -> dict[str, int]:
        rows = await self._db.fetch(
            "SELECT master_key_id, count(*) FROM object_key GROUP BY master_key_id"
        )
        return {str(row[0]): int(row[1]) for row in rows}

    async def wrapped_by_other_than(
        self, master_key_id: str, after: str, limit: int
    ) -> list[WrappedKey]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM object_key"  # noqa: S608 (constants only)
            " WHERE master_key_id <> $1 AND key_id > $2 ORDER BY key_id LIMIT $3",
            master_key_id,
            after,
            limit,
        )
        return [_key(row) for row in rows]

    async def rewrap(self, old: WrappedKey, new: WrappedKey) -> bool:
        changed = await self._db.fetchval(
            "UPDATE object_key SET master_key_id = $1, wrapped = $2"
            " WHERE key_id = $3 AND master_key_id = $4 AND wrapped = $5 RETURNING 1",
            new.master_key_id,
            new.wrapped,
            old.key_id,
            old.master_key_id,
            old.wrapped,
        )
        return changed is not None


def _key(row: asyncpg.Record) -> WrappedKey:
    return WrappedKey(str(row[0]), str(row[1]), str(row[2]), bytes(row[3]))
