"""The embedded ``StateStore``: SQLite under ``GATEWAY_DATA_DIR/state`` (survives restarts).

One machine's state (see ``gateway.store.state`` for what it promises). Through ``SqliteFile``:
reads in a thread, writes group-committed, so the event loop never waits on the disk.

Message claims (``claim_messages``) are the PostgreSQL store's statement in SQLite's words
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``, the file's write lock making it
atomic, ``julianday('now')`` its clock): they hold between openings of this file under
different ``owner`` names (processes of one machine), and the behaviour suite runs them on both
backends. The gateway does not use them: replicas on separate machines each have a file of
their own, so they claim a shared mailbox's messages on the IMAP server instead.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.store.catalog import CatalogEntry, ObjectRead
from gateway.store.process_identity import is_gone, this_process
from gateway.store.secrets import contact_pepper
from gateway.store.sqlite import SqliteFile
from gateway.store.state import (
    IDEMPOTENCY_DAYS,
    PRUNE_EVERY_S,
    StoredResponse,
    keyed_contact_hash,
)

_RELEASE = "DELETE FROM idempotency_claim WHERE scope = ? AND key = ?"
_CLAIM_KEY = (
    "INSERT INTO idempotency_claim (scope, key, claimed_at, holder) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (scope, key) DO UPDATE SET claimed_at = excluded.claimed_at,"
    " holder = excluded.holder WHERE claimed_at < ?"
)
_KEY_HOLDER = "SELECT holder FROM idempotency_claim WHERE scope = ? AND key = ?"
_TAKE_KEY = (
    "UPDATE idempotency_claim SET claimed_at = ?, holder = ?"
    " WHERE scope = ? AND key = ? AND holder = ?"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created);
CREATE TABLE IF NOT EXISTS idempotency_claim (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    holder TEXT,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imap_checkpoint (
    mailbox TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS imap_claim (
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imap_message_claim (
    mailbox TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    owner TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processed_source (
    source_key TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    processed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS complaint_contacts (
    reference TEXT NOT NULL,
    contact_hash TEXT NOT NULL,
    PRIMARY KEY (reference, contact_hash)
);
CREATE TABLE IF NOT EXISTS stored_object (
    sha256 TEXT NOT NULL,
    reference TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    role TEXT NOT NULL,
    recorded REAL NOT NULL,
    PRIMARY KEY (sha256, reference)
);
CREATE INDEX IF NOT EXISTS stored_object_reference ON stored_object (reference);
CREATE TABLE IF NOT EXISTS object_read (
    consumer TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    byte_range TEXT,
    read_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS object_read_sha256 ON object_read (sha256, read_at);
"""


# Win each message free, already this owner's, or held longer than the timeout; the UIDs won.
# The clock is the database's, in seconds since 1970 (unixepoch('subsec') needs SQLite 3.42).
_CLAIM = """
INSERT INTO imap_message_claim (mailbox, uidvalidity, uid, owner, claimed_at)
SELECT ?, ?, value, ?, (julianday('now') - 2440587.5) * 86400.0 FROM json_each(?) WHERE true
ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE
SET owner = excluded.owner, claimed_at = excluded.claimed_at
WHERE imap_message_claim.owner = excluded.owner
   OR imap_message_claim.claimed_at < excluded.claimed_at - ?
RETURNING uid
"""


class SqliteStateStore:
    def __init__(self, directory: Path | None, owner: str = "local") -> None:
        """``owner``: who claims messages through this opening (``claim_messages``)."""
        self._file = SqliteFile(directory / "state.sqlite" if directory else None, _SCHEMA)
        self._file.add_columns({"idempotency_claim": {"holder": "TEXT"}})  # NULL: by lease
        self._owner = owner
        self._pepper = contact_pepper(directory)
        self._pruned_at = 0.0

    async def close(self) -> None:
        self._file.close()

    async def stored_response(self, scope: str, key: str) -> StoredResponse | None:
        row = await self._file.one(
            "SELECT body_sha256, response FROM idempotency WHERE scope = ? AND key = ?",
            (scope, key),
            quick=True,
        )
        return StoredResponse(row[0], json.loads(row[1])) if row else None

    async def store_response(
        self, scope: str, key: str, body_sha256: str, response: dict[str, Any]
    ) -> None:
        now = time.time()
        row = (scope, key, body_sha256, json.dumps(response), now)
        writes = [
            self._file.write(
                "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?, ?)", row, quick=True
            ),
            self._file.write(_RELEASE, (scope, key), quick=True),
        ]
        if now - self._pruned_at > PRUNE_EVERY_S:  # not per request: it was a table scan
            self._pruned_at = now
            expired = (now - IDEMPOTENCY_DAYS * 86400,)
            writes.append(self._file.write("DELETE FROM idempotency WHERE created < ?", expired))
            writes.append(
                self._file.write("DELETE FROM idempotency_claim WHERE claimed_at < ?", expired)
            )
        await asyncio.gather(*writes)

    async def claim_key(self, scope: str, key: str, lease_s: float) -> bool:
        """Free, past its lease, or its holder gone from this machine (``process_identity``):
        then this process's. A holder gone is replaced only if it is still the holder."""
        now, holder = time.time(), this_process()

        def claim(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(_CLAIM_KEY, (scope, key, now, holder, now - lease_s))
            if cursor.rowcount == 1:
                return True
            row = connection.execute(_KEY_HOLDER, (scope, key)).fetchone()
            if row is None or not is_gone(row[0]):
                return False
            taken = connection.execute(_TAKE_KEY, (now, holder, scope, key, row[0]))
            return taken.rowcount == 1

        return await self._file.change(claim, quick=True)

    async def release_key(self, scope: str, key: str) -> None:
        await self._file.write(_RELEASE, (scope, key), quick=True)

    async def record_contacts(self, reference: str, contacts: list[str]) -> None:
        rows = [(reference, self.contact_hash(contact)) for contact in contacts if contact]
        await self._file.write(
            "INSERT OR IGNORE INTO complaint_contacts VALUES (?, ?)", *rows, quick=True
        )

    async def contact_matches(self, reference: str, contact: str) -> bool:
        row = await self._file.one(
            "SELECT 1 FROM complaint_contacts WHERE reference = ? AND contact_hash = ?",
            (reference, self.contact_hash(contact)),
            quick=True,
        )
        return row is not None

    async def checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID done) of a mailbox, None before its first message."""
        row = await self._file.one(
            "SELECT uidvalidity, last_uid FROM imap_checkpoint WHERE mailbox = ?", (mailbox,)
        )
        return (int(row[0]), int(row[1])) if row else None

    async def save_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        await self._file.write(
            "INSERT INTO imap_checkpoint VALUES (?, ?, ?) ON CONFLICT(mailbox) DO UPDATE"
            " SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            (mailbox, uidvalidity, last_uid),
        )

    async def add_claims(self, mailbox: str, uidvalidity: int, claims: dict[int, int]) -> None:
        """Messages this replica claimed in a shared mailbox: UID -> modification sequence."""
        rows = [(mailbox, uidvalidity, uid, modseq) for uid, modseq in claims.items()]
        await self._file.write("INSERT OR REPLACE INTO imap_claim VALUES (?, ?, ?, ?)", *rows)

    async def claims(self, mailbox: str, uidvalidity: int) -> dict[int, int]:
        """This replica's claims, UID -> modification sequence then; claims of an earlier
        UIDVALIDITY (the mailbox recreated) are forgotten: those UIDs name nothing any more."""

        def query(connection: sqlite3.Connection) -> dict[int, int]:
            rows = connection.execute(
                "SELECT uid, modseq FROM imap_claim WHERE mailbox = ? AND uidvalidity = ?",
                (mailbox, uidvalidity),
            )
            return {int(row[0]): int(row[1]) for row in rows}

        await self._file.write(
            "DELETE FROM imap_claim WHERE mailbox = ? AND uidvalidity != ?", (mailbox, uidvalidity)
        )
        return await self._file.read(query)

    async def drop_claims(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
        rows = [(mailbox, uidvalidity, uid) for uid in uids]
        await self._file.write(
            "DELETE FROM imap_claim WHERE mailbox = ? AND uidvalidity = ? AND uid = ?", *rows
        )

    async def claim_messages(
        self, mailbox: str, uidvalidity: int, uids: list[int], stale_after_s: float
    ) -> list[int]:
        wanted = json.dumps(sorted(set(uids)))
        arguments = (mailbox, uidvalidity, self._owner, wanted, stale_after_s)

        def claim(connection: sqlite3.Connection) -> list[int]:
            return sorted(int(row[0]) for row in connection.execute(_CLAIM, arguments))

        return await self._file.change(claim) if uids else []

    async def release_messages(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
        rows = [(mailbox, uidvalidity, uid, self._owner) for uid in uids]
        await self._file.write(
            "DELETE FROM imap_message_claim"
            " WHERE mailbox = ? AND uidvalidity = ? AND uid = ? AND owner = ?",
            *rows,
        )

    async def claimed_messages(self, mailbox: str, uidvalidity: int) -> list[int]:
        def held(connection: sqlite3.Connection) -> list[int]:
            connection.execute(
                "DELETE FROM imap_message_claim"
                " WHERE owner = ? AND mailbox = ? AND uidvalidity != ?",
                (self._owner, mailbox, uidvalidity),
            )
            rows = connection.execute(
                "SELECT uid FROM imap_message_claim"
                " WHERE owner = ? AND mailbox = ? AND uidvalidity = ? ORDER BY uid",
                (self._owner, mailbox, uidvalidity),
            )
            return [int(row[0]) for row in rows]

        return await self._file.change(held)

    async def processed_event(self, source_key: str) -> str | None:
        """The event id already published for an input (a redelivered email), if any."""
        row = await self._file.one(
            "SELECT event_id FROM processed_source WHERE source_key = ?", (source_key,)
        )
        return str(row[0]) if row else None

    async def mark_processed(self, source_key: str, event_id: str) -> None:
        await self._file.write(
            "INSERT OR IGNORE INTO processed_source VALUES (?, ?, ?)",
            (source_key, event_id, time.time()),
        )

    async def record_objects(self, entries: list[CatalogEntry]) -> None:
        rows = [
            (e.sha256, e.reference, e.filename, e.media_type, e.role, time.time()) for e in entries
        ]
        await self._file.write(
            "INSERT OR IGNORE INTO stored_object VALUES (?, ?, ?, ?, ?, ?)", *rows, quick=True
        )

    async def catalog_entry(self, sha256: str) -> CatalogEntry | None:
        row = await self._file.one(
            "SELECT sha256, reference, filename, media_type, role FROM stored_object"
            " WHERE sha256 = ? ORDER BY recorded LIMIT 1",
            (sha256,),
            quick=True,
        )
        return CatalogEntry(*row) if row else None

    async def record_read(self, read: ObjectRead) -> None:
        row = (read.consumer, read.sha256, read.byte_range, read.read_at.timestamp())
        await self._file.write("INSERT INTO object_read VALUES (?, ?, ?, ?)", row)

    async def reads_of(self, reference: str) -> list[ObjectRead]:
        def query(connection: sqlite3.Connection) -> list[ObjectRead]:
            rows = connection.execute(
                "SELECT r.consumer, r.sha256, r.byte_range, r.read_at FROM object_read r"
                " JOIN stored_object o ON o.sha256 = r.sha256 WHERE o.reference = ?"
                " ORDER BY r.read_at",
                (reference,),
            )
            return [
                ObjectRead(row[0], row[1], row[2], datetime.fromtimestamp(row[3], UTC))
                for row in rows
            ]

        return await self._file.read(query)

    def contact_hash(self, contact: str) -> str:
        """Contacts are kept only as keyed hashes: the state file reveals no address."""
        return keyed_contact_hash(self._pepper, contact)
