"""What the gateway records about its own keeping of personal data: ``PrivacyRecords``.

- **Legal holds**: a reference on hold is kept whatever its retention says (and is not erased):
  litigation, an inquiry. Placed and released by an operator (who, when, why kept).
- **Erasures**: that a complaint was erased on request, and when; nothing else of it.
- **Access records**: every read of a stored object by a person or a system other than the
  intake itself (an operator's view of a rejected input, a redrive, an erasure's look at what
  to delete): who, what, why, when, and the complaint it belongs to when known. Reads by case
  systems through ``GET /v1/objects`` are recorded by the object catalog
  (``ObjectCatalog.record_read``); ``intake-gateway audit REFERENCE`` shows both.

Implementations: ``SqlitePrivacyRecords`` here (``state/privacy.sqlite``) and
``gateway.store.postgres.privacy`` (migration 0007).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from gateway.store.sqlite import SqliteFile


@dataclass(frozen=True)
class Hold:
    reference: str
    placed_at: datetime
    placed_by: str
    note: str


@dataclass(frozen=True)
class Access:
    who: str  # "cli:marie", "admin:marie.roy", a case system's name
    what: str  # "object <sha256>", "object <sha256> bytes 0-1023", "raw copy of DLQ record <id>"
    why: str  # "dlq show", "redrive", "erasure"...
    at: datetime
    sha256: str | None = None
    reference: str | None = None


class PrivacyRecords(Protocol):
    async def hold(self, reference: str, by: str, note: str) -> bool:
        """Put ``reference`` on hold; False when it was already."""
        ...

    async def release(self, reference: str) -> bool:
        """Lift the hold; False when there was none."""
        ...

    async def holds(self) -> list[Hold]: ...

    async def hold_of(self, reference: str) -> Hold | None: ...

    async def record_erasure(self, reference: str, at: datetime) -> None:
        """The first erasure of a reference is kept (a second finds nothing left to erase)."""
        ...

    async def erased_at(self, reference: str) -> datetime | None: ...

    async def erased_among(self, references: Collection[str]) -> set[str]:
        """Those of ``references`` that were erased."""
        ...

    async def record_access(self, access: Access) -> None: ...

    async def accesses(self, reference: str, sha256s: list[str]) -> list[Access]:
        """Accesses naming the reference, or one of its objects, oldest first."""
        ...

    async def forget_accesses(self, reference: str) -> int: ...

    async def prune_accesses(self, before: datetime) -> int: ...

    async def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS legal_hold (
    reference TEXT PRIMARY KEY,
    placed_at REAL NOT NULL,
    placed_by TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erasure (
    reference TEXT PRIMARY KEY,
    erased_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_record (
    who TEXT NOT NULL,
    what TEXT NOT NULL,
    why TEXT NOT NULL,
    at REAL NOT NULL,
    sha256 TEXT,
    reference TEXT
);
CREATE INDEX IF NOT EXISTS access_record_reference ON access_record (reference, at);
CREATE INDEX IF NOT EXISTS access_record_sha256 ON access_record (sha256, at);
CREATE INDEX IF NOT EXISTS access_record_at ON access_record (at);
"""


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SqlitePrivacyRecords:
    def __init__(self, directory: Path | None) -> None:
        path = directory / "privacy.sqlite" if directory else None
        self._file = SqliteFile(path, _SCHEMA, secure_delete=True)

    async def close(self) -> None:
        self._file.close()

    async def hold(self, reference: str, by: str, note: str) -> bool:
        row = (reference, time.time(), by, note)
        return await self._changed("INSERT OR IGNORE INTO legal_hold VALUES (?, ?, ?, ?)", row)

    async def release(self, reference: str) -> bool:
        return await self._changed("DELETE FROM legal_hold WHERE reference = ?", (reference,))

    async def holds(self) -> list[Hold]:
        def query(connection: sqlite3.Connection) -> list[Hold]:
            rows = connection.execute("SELECT * FROM legal_hold ORDER BY placed_at")
            return [Hold(row[0], _at(row[1]), row[2], row[3]) for row in rows]

        return await self._file.read(query)

    async def hold_of(self, reference: str) -> Hold | None:
        row = await self._file.one("SELECT * FROM legal_hold WHERE reference = ?", (reference,))
        return Hold(row[0], _at(row[1]), row[2], row[3]) if row else None

    async def record_erasure(self, reference: str, at: datetime) -> None:
        await self._file.write(
            "INSERT OR IGNORE INTO erasure VALUES (?, ?)", (reference, at.timestamp())
        )

    async def erased_at(self, reference: str) -> datetime | None:
        row = await self._file.one(
            "SELECT erased_at FROM erasure WHERE reference = ?", (reference,)
        )
        return _at(row[0]) if row else None

    async def erased_among(self, references: Collection[str]) -> set[str]:
        wanted = list(references)

        def query(connection: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), 500):  # SQLite's limit of bound parameters
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT reference FROM erasure WHERE reference IN ({marks})"  # noqa: S608
                found.update(row[0] for row in connection.execute(sql, chunk))
            return found

        return await self._file.read(query) if wanted else set()

    async def record_access(self, access: Access) -> None:
        row = (access.who, access.what, access.why, access.at.timestamp())
        await self._file.write(
            "INSERT INTO access_record VALUES (?, ?, ?, ?, ?, ?)",
            (*row, access.sha256, access.reference),
        )

    async def accesses(self, reference: str, sha256s: list[str]) -> list[Access]:
        marks = ", ".join("?" for _ in sha256s) or "NULL"

        def query(connection: sqlite3.Connection) -> list[Access]:
            rows = connection.execute(
                "SELECT who, what, why, at, sha256, reference FROM access_record"  # noqa: S608 (placeholders only)
                f" WHERE reference = ? OR sha256 IN ({marks}) ORDER BY at",
                (reference, *sha256s),
            )
            return [Access(r[0], r[1], r[2], _at(r[3]), r[4], r[5]) for r in rows]

        return await self._file.read(query)

    async def forget_accesses(self, reference: str) -> int:
        return await self._count("DELETE FROM access_record WHERE reference = ?", (reference,))

    async def prune_accesses(self, before: datetime) -> int:
        return await self._count("DELETE FROM access_record WHERE at < ?", (before.timestamp(),))

    async def _changed(self, sql: str, row: tuple[object, ...]) -> bool:
        return await self._count(sql, row) > 0

    async def _count(self, sql: str, row: tuple[object, ...]) -> int:
        def change(connection: sqlite3.Connection) -> int:
            return connection.execute(sql, row).rowcount

        return await self._file.change(change)
