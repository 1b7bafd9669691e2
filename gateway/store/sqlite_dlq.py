"""The embedded ``DlqStore``: SQLite, ``GATEWAY_DATA_DIR/state/dlq.sqlite`` (one machine).

See ``gateway.store.dlq`` for what it promises. A claim is one ``UPDATE ... WHERE`` the record
is open and unclaimed (or its lease ran out): SQLite runs one writer at a time, so of two
claims exactly one changes the row. Times are seconds since the epoch (this machine's clock).
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from gateway.store.sqlite import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dlq_record (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    source_key TEXT NOT NULL,
    source TEXT NOT NULL,
    source_id TEXT,
    source_uri TEXT,
    received_at REAL NOT NULL,
    recorded_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until REAL,
    closed_by TEXT,
    closed_at REAL,
    event_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS dlq_record_open ON dlq_record (status, recorded_at);
CREATE TABLE IF NOT EXISTS dlq_action (
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dlq_action_record ON dlq_action (record_id, at);
"""
_COLUMNS = (
    "id, channel, reason_code, reason, details, source_key, source, source_id, source_uri,"
    " received_at, recorded_at, status, attempts, closed_by, closed_at, event_ids"
)
_UNCLAIMED = "(claimed_by IS NULL OR claimed_until < ?)"


class SqliteDlqStore:
    def __init__(self, directory: Path | None) -> None:
        self._file = SqliteFile(directory / "dlq.sqlite" if directory else None, _SCHEMA)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        self._file.close()

    async def add(self, record: DlqRecord) -> bool:
        row = (
            record.id,
            record.channel,
            record.reason_code,
            record.reason,
            json.dumps(record.details),
            record.source_key,
            record.source,
            record.source_id,
            record.source_uri,
            record.received_at.timestamp(),
            record.recorded_at.timestamp(),
        )

        def insert(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO dlq_record (id, channel, reason_code, reason, details,"
                " source_key, source, source_id, source_uri, received_at, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return cursor.rowcount == 1

        return await self._file.change(insert)

    async def get(self, id_or_prefix: str) -> DlqRecord | None:
        prefix = id_prefix(id_or_prefix)
        if prefix is None:
            return None

        def query(db: sqlite3.Connection) -> list[Any]:
            exact = db.execute(
                f"SELECT {_COLUMNS} FROM dlq_record WHERE id = ?",  # noqa: S608 (constants only)
                (prefix,),
            ).fetchall()
            return (
                exact
                or db.execute(
                    f"SELECT {_COLUMNS} FROM dlq_record WHERE id LIKE ? LIMIT 2",  # noqa: S608
                    (prefix + "%",),
                ).fetchall()
            )

        rows = await self._file.read(query)
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
        sql = f"SELECT {_COLUMNS} FROM dlq_record WHERE recorded_at >= ?"  # noqa: S608
        parameters: list[Any] = [since.timestamp() if since else 0.0]
        if reason_code is not None:
            sql += " AND reason_code = ?"
            parameters.append(reason_code)
        if status is not None:
            sql += " AND status = ?"
            parameters.append(str(status))
        sql += " ORDER BY recorded_at DESC, id LIMIT ?"
        parameters.append(limit)
        rows = await self._file.read(lambda db: db.execute(sql, parameters).fetchall())
        return [_record(row) for row in rows]

    async def actions(self, record_id: str) -> list[DlqAction]:
        rows = await self._file.read(
            lambda db: db.execute(
                "SELECT record_id, action, actor, at, outcome, detail FROM dlq_action"
                " WHERE record_id = ? ORDER BY at, rowid",
                (record_id,),
            ).fetchall()
        )
        return [DlqAction(r[0], r[1], r[2], _time(r[3]), r[4], r[5]) for r in rows]

    async def claim(self, record_id: str, claimant: str, lease_s: float = LEASE_S) -> bool:
        now = time.time()
        return await self._changed(
            f"UPDATE dlq_record SET claimed_by = ?, claimed_until = ?"  # noqa: S608
            f" WHERE id = ? AND status = 'open' AND {_UNCLAIMED}",
            (claimant, now + lease_s, record_id, now),
        )

    async def finish(
        self, record_id: str, claimant: str, by: str, event_ids: list[str], detail: str = ""
    ) -> bool:
        now = time.time()
        return await self._changed(
            "UPDATE dlq_record SET status = 'redriven', attempts = attempts + 1,"
            " claimed_by = NULL, claimed_until = NULL, closed_by = ?, closed_at = ?,"
            " event_ids = ? WHERE id = ? AND status = 'open' AND claimed_by = ?",
            (by, now, json.dumps(event_ids), record_id, claimant),
            action=(record_id, "redrive", by, now, "redriven", detail),
        )

    async def release(
        self, record_id: str, claimant: str, by: str, reason_code: str, reason: str
    ) -> bool:
        now = time.time()
        return await self._changed(
            "UPDATE dlq_record SET attempts = attempts + 1, claimed_by = NULL,"
            " claimed_until = NULL, reason_code = ?, reason = ?"
            " WHERE id = ? AND status = 'open' AND claimed_by = ?",
            (reason_code, reason, record_id, claimant),
            action=(record_id, "redrive", by, now, "still_rejected", f"{reason_code}: {reason}"),
        )

    async def unclaim(self, record_id: str, claimant: str) -> None:
        await self._changed(
            "UPDATE dlq_record SET claimed_by = NULL, claimed_until = NULL"
            " WHERE id = ? AND claimed_by = ?",
            (record_id, claimant),
        )

    async def dismiss(self, record_id: str, by: str, note: str = "") -> bool:
        now = time.time()
        return await self._changed(
            "UPDATE dlq_record SET status = 'dismissed', claimed_by = NULL,"  # noqa: S608
            f" claimed_until = NULL, closed_by = ?, closed_at = ?"
            f" WHERE id = ? AND status = 'open' AND {_UNCLAIMED}",
            (by, now, record_id, now),
            action=(record_id, "dismiss", by, now, "dismissed", note),
        )

    async def open_summary(self) -> list[ReasonSummary]:
        rows = await self._file.read(
            lambda db: db.execute(
                "SELECT reason_code, count(*), min(recorded_at) FROM dlq_record"
                " WHERE status = 'open' GROUP BY reason_code ORDER BY reason_code"
            ).fetchall()
        )
        return [ReasonSummary(row[0], int(row[1]), _time(row[2])) for row in rows]

    async def _changed(
        self, sql: str, parameters: tuple[Any, ...], action: tuple[Any, ...] | None = None
    ) -> bool:
        """Run ``sql``; True if it changed the row, and then ``action`` is kept with it (one
        transaction)."""

        def run(db: sqlite3.Connection) -> bool:
            changed = db.execute(sql, parameters).rowcount == 1
            if changed and action is not None:
                db.execute("INSERT INTO dlq_action VALUES (?, ?, ?, ?, ?, ?)", action)
            return changed

        return await self._file.change(run)


def _time(seconds: float | None) -> datetime:
    return datetime.fromtimestamp(seconds or 0.0, UTC)


def _record(row: Any) -> DlqRecord:
    return DlqRecord(
        id=row[0],
        channel=row[1],
        reason_code=row[2],
        reason=row[3],
        details=json.loads(row[4]),
        source_key=row[5],
        source=row[6],
        source_id=row[7],
        source_uri=row[8],
        received_at=_time(row[9]),
        recorded_at=_time(row[10]),
        status=DlqStatus(row[11]),
        attempts=int(row[12]),
        closed_by=row[13],
        closed_at=_time(row[14]) if row[14] is not None else None,
        event_ids=tuple(json.loads(row[15])),
    )
