"""The embedded ``NotificationLedger``: SQLite under ``GATEWAY_DATA_DIR/state`` (one machine).

See ``gateway.notifier.ledger`` for what it promises. Contacts are kept in this file only,
which is readable by the gateway's user alone.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from gateway.notifier.ledger import (
    Contact,
    LedgerEntry,
    Outcome,
    SentEmail,
    message_id_or_none,
)
from gateway.store.sqlite import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    reference TEXT NOT NULL,
    purpose TEXT NOT NULL,
    medium TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    updated REAL NOT NULL,
    recipient TEXT,
    values_json TEXT
);
CREATE INDEX IF NOT EXISTS notifications_by_reference ON notifications (reference, medium);
CREATE INDEX IF NOT EXISTS notifications_by_recipient ON notifications (recipient, medium);
CREATE TABLE IF NOT EXISTS contacts (
    reference TEXT PRIMARY KEY,
    name TEXT,
    email TEXT,
    phone TEXT,
    postal_address TEXT,
    language TEXT,
    updated REAL NOT NULL
);
"""
# Columns added since the first version of the file, added to an older file when opened.
_ADDED_COLUMNS = {"claimed_by": "TEXT", "claimed_until": "REAL"}


class SqliteLedger:
    def __init__(self, directory: Path | None) -> None:
        self._file = SqliteFile(directory / "notifier.sqlite" if directory else None, _SCHEMA)
        self._file.upgrade(_add_columns)

    async def close(self) -> None:
        self._file.close()

    async def outcome(self, notification_id: str) -> Outcome | None:
        row = await self._file.one(
            "SELECT status, provider_message_id FROM notifications WHERE notification_id = ?",
            (notification_id,),
        )
        return Outcome(row[0], row[1]) if row else None

    async def claim(self, entry: LedgerEntry, owner: str, lease_s: float) -> bool:
        now = time.time()
        row = (*_record_row(entry, "sending", now), owner, now + lease_s)

        def claim(connection: sqlite3.Connection) -> bool:
            return connection.execute(_CLAIM, (*row, now)).fetchone() is not None

        return await self._file.change(claim)

    async def record(self, entry: LedgerEntry) -> None:
        """Returns once the entry is committed (together with the others waiting then)."""
        await self._file.write(_RECORD, _record_row(entry, entry.status, time.time()))

    async def remember_contact(self, contact: Contact) -> None:
        await self._file.write(_REMEMBER, _contact_row(contact))

    async def contact(self, reference: str) -> Contact | None:
        row = await self._file.one(
            "SELECT reference, name, email, phone, postal_address, language FROM contacts"
            " WHERE reference = ?",
            (reference,),
        )
        return Contact(*row) if row else None

    async def latest_sms_reference(self, phone: str, within_days: int) -> str | None:
        row = await self._file.one(
            "SELECT reference FROM notifications WHERE medium = 'sms'"
            " AND status IN ('sent', 'announced')"
            " AND recipient = ? AND updated >= ? ORDER BY updated DESC LIMIT 1",
            (phone, time.time() - within_days * 86_400),
        )
        return str(row[0]) if row else None

    async def acknowledgement_message_id(self, reference: str) -> str | None:
        row = await self._file.one(
            "SELECT provider_message_id FROM notifications WHERE reference = ?"
            " AND medium = 'email' AND purpose = 'acknowledgement'"
            " AND status IN ('sent', 'announced') ORDER BY updated DESC LIMIT 1",
            (reference,),
        )
        return message_id_or_none(str(row[0] or "") if row else "")

    async def latest_email(self, reference: str) -> SentEmail | None:
        row = await self._file.one(
            "SELECT notification_id, purpose, recipient, values_json FROM notifications"
            " WHERE reference = ? AND medium = 'email' AND status IN ('sent', 'announced')"
            " ORDER BY updated DESC LIMIT 1",
            (reference,),
        )
        if row is None:
            return None
        return SentEmail(str(row[0]), str(row[1]), str(row[2] or ""), json.loads(row[3] or "{}"))


def _add_columns(connection: sqlite3.Connection) -> None:
    present = {row[1] for row in connection.execute("PRAGMA table_info(notifications)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name not in present:
            connection.execute(f"ALTER TABLE notifications ADD COLUMN {name} {kind}")


_COLUMNS = (
    "notification_id, reference, purpose, medium, status, attempts, provider_message_id,"
    " updated, recipient, values_json"
)
_RECORD = (
    f"INSERT INTO notifications ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"  # noqa: S608 (constants only)
    " ON CONFLICT(notification_id) DO UPDATE SET status = excluded.status,"
    " attempts = attempts + 1,"
    " provider_message_id = coalesce(excluded.provider_message_id, provider_message_id),"
    " recipient = coalesce(excluded.recipient, recipient),"
    " values_json = coalesce(excluded.values_json, values_json),"
    " updated = excluded.updated"
)
_CLAIM = (
    f"INSERT INTO notifications ({_COLUMNS}, claimed_by, claimed_until)"  # noqa: S608 (constants only)
    " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(notification_id) DO UPDATE SET attempts = attempts + 1,"
    " recipient = coalesce(excluded.recipient, recipient),"
    " values_json = coalesce(excluded.values_json, values_json),"
    " updated = excluded.updated, claimed_by = excluded.claimed_by,"
    " claimed_until = excluded.claimed_until"
    " WHERE status = 'sending'"
    " AND (claimed_by IS NULL OR claimed_by = excluded.claimed_by OR claimed_until < ?)"
    " RETURNING 1"
)
_REMEMBER = (
    "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(reference) DO UPDATE SET name = coalesce(excluded.name, name),"
    " email = coalesce(excluded.email, email), phone = coalesce(excluded.phone, phone),"
    " postal_address = coalesce(excluded.postal_address, postal_address),"
    " language = coalesce(excluded.language, language), updated = excluded.updated"
)


def _record_row(entry: LedgerEntry, status: str, now: float) -> tuple[Any, ...]:
    values_json = to_json(entry.values).decode() if entry.values is not None else None
    return (
        entry.notification_id,
        entry.reference,
        entry.purpose,
        entry.medium,
        status,
        entry.provider_message_id,
        now,
        entry.recipient,
        values_json,
    )


def _contact_row(contact: Contact) -> tuple[Any, ...]:
    return (
        contact.reference,
        contact.name,
        contact.email,
        contact.phone,
        contact.postal_address,
        contact.language,
        time.time(),
    )
