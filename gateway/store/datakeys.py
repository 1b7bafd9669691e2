"""Where each encrypted object's data key is kept, wrapped by a master key: ``DataKeyStore``.

A data key is random per object (``gateway.store.envelope``); the object's header names it by
a random id. The row also names the object (its SHA-256) the key was made for, and the master
key that wraps it. Keeping the keys apart from the objects makes three things cheap and sure:

- **rotation** re-wraps rows (``rewrap``), never touching an object;
- **crypto-shredding**: ``delete_keys_of`` destroys every data key of an object, so its bytes,
  wherever a copy of them lingers (a backup, an S3 version), can no longer be read;
- **binding**: a key opens only the object it was made for (an object copied under another
  name is refused).

Two writers storing the same bytes at once each add a key; the object kept is the last one
renamed into place, and its header names its own key (the other row is never used, and goes
with the object when it is deleted). Implementations: ``SqliteDataKeys`` here
(``state/object-keys.sqlite``) and ``gateway.store.postgres.datakeys`` (table ``object_key``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.store.sqlite import SqliteFile

WRAP_CONTEXT = b"data-key|"


@dataclass(frozen=True)
class WrappedKey:
    key_id: str  # hex of the 16 bytes in the object's header
    sha256: str  # the object it was made for
    master_key_id: str
    wrapped: bytes  # nonce + AES-GCM of the data key under the master key

    @property
    def context(self) -> bytes:
        """What the wrap is bound to: this key of this object."""
        return WRAP_CONTEXT + self.key_id.encode() + b"|" + self.sha256.encode()


class DataKeyStore(Protocol):
    async def add(self, key: WrappedKey) -> None:
        """Kept once committed (before the object it opens is stored)."""
        ...

    async def key(self, key_id: str) -> WrappedKey | None: ...

    async def delete_keys_of(self, sha256: str) -> int:
        """Destroy every data key made for the object; how many there were."""
        ...

    async def master_key_ids(self) -> set[str]:
        """The master keys that wrap data keys."""
        ...

    async def counts(self) -> dict[str, int]:
        """Master key id -> how many data keys it wraps (a scan: for reports)."""
        ...

    async def wrapped_by_other_than(
        self, master_key_id: str, after: str, limit: int
    ) -> list[WrappedKey]:
        """Keys not wrapped by ``master_key_id``, by key id from past ``after`` (to re-wrap)."""
        ...

    async def rewrap(self, old: WrappedKey, new: WrappedKey) -> bool:
        """Replace ``old``'s wrap by ``new``'s, unless someone else changed it meanwhile."""
        ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS object_key (
    key_id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE INDEX IF NOT EXISTS object_key_sha256 ON object_key (sha256);
CREATE INDEX IF NOT EXISTS object_key_master ON object_key (master_key_id);
"""


def distinct_query(table: str, column: str) -> str:
    """The distinct values of an indexed column, one index probe each (a loose index scan),
    however many rows: for the few master key ids of a large table, at every start."""
    return f"""
WITH RECURSIVE found(value) AS (
    SELECT min({column}) FROM {table}
    UNION ALL
    SELECT (SELECT min({column}) FROM {table} WHERE {column} > value)
    FROM found WHERE value IS NOT NULL
)
SELECT value FROM found WHERE value IS NOT NULL
"""  # noqa: S608 (names of our own tables)


MASTER_IDS = distinct_query("object_key", "master_key_id")


def distinct_values(connection: sqlite3.Connection, table: str, column: str) -> set[str]:
    return {str(row[0]) for row in connection.execute(distinct_query(table, column))}


class SqliteDataKeys:
    def __init__(self, directory: Path | None) -> None:
        path = directory / "object-keys.sqlite" if directory else None
        self._file = SqliteFile(path, _SCHEMA, secure_delete=True)  # a key destroyed is gone

    async def close(self) -> None:
        self._file.close()

    async def add(self, key: WrappedKey) -> None:
        await self._file.write(
            "INSERT OR IGNORE INTO object_key (key_id, sha256, master_key_id, wrapped)"
            " VALUES (?, ?, ?, ?)",
            (key.key_id, key.sha256, key.master_key_id, key.wrapped),
            quick=True,
        )

    async def key(self, key_id: str) -> WrappedKey | None:
        row = await self._file.one(
            "SELECT key_id, sha256, master_key_id, wrapped FROM object_key WHERE key_id = ?",
            (key_id,),
            quick=True,
        )
        return WrappedKey(row[0], row[1], row[2], bytes(row[3])) if row else None

    async def delete_keys_of(self, sha256: str) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            return connection.execute("DELETE FROM object_key WHERE sha256 = ?", (sha256,)).rowcount

        deleted = await self._file.change(delete)
        if deleted:  # the journal's copies of the key's pages go too
            await self._file.read(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        return deleted

    async def master_key_ids(self) -> set[str]:
        def query(connection: sqlite3.Connection) -> set[str]:
            return distinct_values(connection, "object_key", "master_key_id")

        return await self._file.read(query)

    async def counts(self) -> dict[str, int]:
        def query(connection: sqlite3.Connection) -> dict[str, int]:
            rows = connection.execute(
                "SELECT master_key_id, count(*) FROM object_key GROUP BY master_key_id"
            )
            return {str(row[0]): int(row[1]) for row in rows}

        return await self._file.read(query)

    async def wrapped_by_other_than(
        self, master_key_id: str, after: str, limit: int
    ) -> list[WrappedKey]:
        def query(connection: sqlite3.Connection) -> list[WrappedKey]:
            rows = connection.execute(
                "SELECT key_id, sha256, master_key_id, wrapped FROM object_key"
                " WHERE master_key_id != ? AND key_id > ? ORDER BY key_id LIMIT ?",
                (master_key_id, after, limit),
            )
            return [WrappedKey(row[0], row[1], row[2], bytes(row[3])) for row in rows]

        return await self._file.read(query)

    async def rewrap(self, old: WrappedKey, new: WrappedKey) -> bool:
        def update(connection: sqlite3.Connection) -> bool:
            changed = connection.execute(
                "UPDATE object_key SET master_key_id = ?, wrapped = ?"
                " WHERE key_id = ? AND master_key_id = ? AND wrapped = ?",
                (new.master_key_id, new.wrapped, old.key_id, old.master_key_id, old.wrapped),
            )
            return changed.rowcount == 1

        return await self._file.change(update)
