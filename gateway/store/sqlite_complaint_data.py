"""``ComplaintData`` over the embedded SQLite files of ``GATEWAY_DATA_DIR/state``: one connection
on ``state.sqlite`` with the notifier's, the tracker's, the duplicate index's, the dead-letter
queue's and the privacy records' files attached, so one statement can date a complaint from all
of them. Opened on first use (the stores have made their files by then); its statements wait up
to 30 s for the other processes' writes. Times are seconds since the epoch (the tracker's,
microseconds)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from gateway.errors import StateStoreError
from gateway.store.catalog import sha256_of_uri
from gateway.store.complaint_data import DlqCopy, DueObject, Kind

T = TypeVar("T")
ATTACHED = {
    "notifier": "notifier.sqlite",
    "tracker": "tracker.sqlite",
    "duplicates": "duplicates.sqlite",
    "dlq": "dlq.sqlite",
    "privacy": "privacy.sqlite",
}
CLOCK = """
WITH seen(reference, at) AS (
    SELECT reference, recorded FROM main.stored_object
    UNION ALL SELECT reference, received_at / 1e6 FROM tracker.tracked_complaint
        WHERE received_at IS NOT NULL
    UNION ALL SELECT reference, updated FROM notifier.contacts
    UNION ALL SELECT reference, updated FROM notifier.notifications
    UNION ALL SELECT reference, received_at FROM duplicates.duplicate_index
), clock(reference, since) AS (
    SELECT s.reference, coalesce(max(t.closed_at) / 1e6, min(s.at))
    FROM seen s LEFT JOIN tracker.tracked_complaint t ON t.reference = s.reference
    GROUP BY s.reference
), held(reference) AS (SELECT reference FROM privacy.legal_hold)
"""
_DUE_SELECT = """
SELECT sha256, group_concat(CASE WHEN due THEN reference END, char(9)), min(due)
FROM (
    SELECT o.sha256, o.reference,
        (c.since < CASE o.role WHEN 'raw' THEN :raw ELSE :attachment END
         AND o.reference NOT IN held) AS due
    FROM main.stored_object o JOIN clock c ON c.reference = o.reference
)
GROUP BY sha256 HAVING max(due) = 1 ORDER BY sha256
"""
DUE_OBJECTS = "\n".join([CLOCK, _DUE_SELECT])
HAVING = {
    "state": """
        SELECT reference FROM notifier.contacts UNION SELECT reference FROM notifier.notifications
        UNION SELECT reference FROM main.complaint_contacts
        UNION SELECT reference FROM duplicates.duplicate_index""",
    "tracker": """
        SELECT reference FROM tracker.tracked_complaint
        UNION SELECT reference FROM tracker.tracker_entry""",
}
STATE_TABLES = {
    "contacts": "notifier.contacts",
    "notifications": "notifier.notifications",
    "contact_hashes": "main.complaint_contacts",
    "duplicates": "duplicates.duplicate_index",
}


class SqliteComplaintData:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(
                self._directory / "state.sqlite", timeout=30, check_same_thread=False
            )
            for name, file in ATTACHED.items():
                db.execute("ATTACH DATABASE ? AS " + name, (str(self._directory / file),))
            for name in ("main", *ATTACHED):  # what is deleted is overwritten, not left free
                db.execute(f"PRAGMA {name}.secure_delete = ON")
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with self._lock:
                db = self._connection()
                try:
                    with db:
                        return work(db)
                except sqlite3.Error as exc:
                    raise StateStoreError(f"state store: {exc}") from exc

        return await asyncio.to_thread(run)

    async def due_objects(self, cutoffs: Mapping[str, datetime]) -> list[DueObject]:
        given = {"raw": cutoffs["raw"].timestamp(), "attachment": cutoffs["attachment"].timestamp()}

        def query(db: sqlite3.Connection) -> list[DueObject]:
            rows = db.execute(DUE_OBJECTS, given)
            return [DueObject(row[0], tuple(row[1].split("\t")), bool(row[2])) for row in rows]

        return await self._run(query)

    async def due_references(self, kind: Kind, before: datetime) -> list[str]:
        sql = (
            f"{CLOCK}, having_rows(reference) AS ({HAVING[kind]})"  # noqa: S608 (constants only)
            " SELECT h.reference FROM having_rows h LEFT JOIN clock c ON c.reference = h.reference"
            " WHERE (c.since < ? OR c.since IS NULL) AND h.reference NOT IN held"
            " ORDER BY h.reference"
        )
        return await self._run(
            lambda db: [str(row[0]) for row in db.execute(sql, (before.timestamp(),))]
        )

    async def due_dlq(self, before: datetime) -> list[DlqCopy]:
        sql = (
            "SELECT id, source_uri FROM dlq.dlq_record WHERE recorded_at < ?"
            " AND coalesce(json_extract(details, '$.reference'), '')"
            " NOT IN (SELECT reference FROM privacy.legal_hold) ORDER BY id"
        )
        return await self._run(lambda db: _copies(db.execute(sql, (before.timestamp(),))))

    async def objects_of(self, reference: str) -> list[tuple[str, str]]:
        sql = "SELECT sha256, role FROM main.stored_object WHERE reference = ? ORDER BY sha256"
        return await self._run(lambda db: [(r[0], r[1]) for r in db.execute(sql, (reference,))])

    async def holders(self, sha256: str) -> set[str]:
        sql = "SELECT DISTINCT reference FROM main.stored_object WHERE sha256 = ?"
        return await self._run(lambda db: {str(r[0]) for r in db.execute(sql, (sha256,))})

    async def dlq_needs(self, sha256: str, besides: Sequence[str] = ()) -> bool:
        marks = ", ".join("?" for _ in besides) or "NULL"
        sql = (
            "SELECT 1 FROM dlq.dlq_record WHERE source_uri LIKE ?"  # noqa: S608 (placeholders)
            f" AND id NOT IN ({marks}) LIMIT 1"
        )
        found = await self._run(lambda db: db.execute(sql, (f"%{sha256}", *besides)).fetchone())
        return found is not None

    async def dlq_of(self, reference: str) -> list[DlqCopy]:
        sql = (
            "SELECT id, source_uri FROM dlq.dlq_record"
            " WHERE json_extract(details, '$.reference') = ? ORDER BY id"
        )
        return await self._run(lambda db: _copies(db.execute(sql, (reference,))))

    async def forget_rows(self, sha256: str, references: Sequence[str]) -> int:
        marks = ", ".join("?" for _ in references)
        sql = f"DELETE FROM main.stored_object WHERE sha256 = ? AND reference IN ({marks})"  # noqa: S608 (placeholders)
        return await self._run(lambda db: db.execute(sql, (sha256, *references)).rowcount)

    async def forget_catalog(self, reference: str) -> int:
        sql = "DELETE FROM main.stored_object WHERE reference = ?"
        return await self._run(lambda db: db.execute(sql, (reference,)).rowcount)

    async def forget_state(self, reference: str, *, answers: bool = False) -> dict[str, int]:
        def forget(db: sqlite3.Connection) -> dict[str, int]:
            counts = {
                name: db.execute(f"DELETE FROM {table} WHERE reference = ?", (reference,)).rowcount  # noqa: S608 (constants)
                for name, table in STATE_TABLES.items()
            }
            if answers:
                counts["answers"] = db.execute(
                    "DELETE FROM main.idempotency WHERE json_extract(response, '$.reference') = ?",
                    (reference,),
                ).rowcount
            return counts

        return await self._run(forget)

    async def forget_tracker(self, reference: str) -> int:
        def forget(db: sqlite3.Connection) -> int:
            entries = db.execute(
                "DELETE FROM tracker.tracker_entry WHERE reference = ?", (reference,)
            ).rowcount
            standing = db.execute(
                "DELETE FROM tracker.tracked_complaint WHERE reference = ?", (reference,)
            ).rowcount
            return entries + standing

        return await self._run(forget)

    async def forget_dlq(self, record_ids: Sequence[str]) -> int:
        marks = ", ".join("?" for _ in record_ids) or "NULL"

        def forget(db: sqlite3.Connection) -> int:
            actions = f"DELETE FROM dlq.dlq_action WHERE record_id IN ({marks})"  # noqa: S608 (placeholders)
            records = f"DELETE FROM dlq.dlq_record WHERE id IN ({marks})"  # noqa: S608 (placeholders)
            db.execute(actions, record_ids)
            return db.execute(records, record_ids).rowcount

        return await self._run(forget)

    async def compact(self) -> None:
        def run() -> None:
            with self._lock:
                db = self._connection()
                for name in ("main", *ATTACHED):  # outside a transaction
                    db.execute(f"PRAGMA {name}.wal_checkpoint(TRUNCATE)")

        await asyncio.to_thread(run)

    async def prune(self, reads_before: datetime, processed_before: datetime) -> dict[str, int]:
        def prune(db: sqlite3.Connection) -> dict[str, int]:
            reads = db.execute(
                "DELETE FROM main.object_read WHERE read_at < ?", (reads_before.timestamp(),)
            )
            processed = db.execute(
                "DELETE FROM main.processed_source WHERE processed < ?",
                (processed_before.timestamp(),),
            )
            return {"object_reads": reads.rowcount, "processed_inputs": processed.rowcount}

        return await self._run(prune)


def _copies(rows: sqlite3.Cursor) -> list[DlqCopy]:
    return [DlqCopy(str(row[0]), sha256_of_uri(row[1])) for row in rows]
