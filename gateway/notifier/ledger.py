"""The notifier's memory (SQLite under ``GATEWAY_DATA_DIR/state``, survives restarts).

- ``notifications``: one row per deterministic notification id and its outcome, so a redelivered
  complaint event never sends twice. A row is written ``sending`` before the provider is called
  and ``sent`` right after it answered; offsets are committed only after that.
- ``contacts``: how to reach the person of each complaint (for status updates, the fallback after
  a bounce, and to tie an inbound SMS to the complaint it answers). Kept in this file only, which
  is readable by the gateway's user alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import to_json

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


@dataclass(frozen=True)
class Contact:
    reference: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str
    provider_message_id: str | None


@dataclass(frozen=True)
class LedgerEntry:
    """A notification's state, as the dispatcher records it."""

    notification_id: str
    reference: str
    purpose: str
    medium: str
    status: str
    provider_message_id: str | None = None
    recipient: str | None = None
    values: dict[str, Any] | None = None


@dataclass(frozen=True)
class SentEmail:
    """An email we sent about a complaint, and the values it was rendered from."""

    notification_id: str
    purpose: str
    recipient: str
    values: dict[str, Any]


class NotificationLedger:
    def __init__(self, directory: Path | None) -> None:
        self._file = SqliteFile(directory / "notifier.sqlite" if directory else None, _SCHEMA)

    def close(self) -> None:
        self._file.close()

    async def outcome(self, notification_id: str) -> Outcome | None:
        row = await self._file.one(
            "SELECT status, provider_message_id FROM notifications WHERE notification_id = ?",
            (notification_id,),
        )
        return Outcome(row[0], row[1]) if row else None

    async def record(self, entry: LedgerEntry) -> None:
        """Returns once the entry is committed (together with the others waiting then)."""
        await self._file.write(_RECORD, _record_row(entry))

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
        """The complaint we last sent an SMS about to this number, within the window."""
        row = await self._file.one(
            "SELECT reference FROM notifications WHERE medium = 'sms'"
            " AND status IN ('sent', 'announced')"
            " AND recipient = ? AND updated >= ? ORDER BY updated DESC LIMIT 1",
            (phone, time.time() - within_days * 86_400),
        )
        return str(row[0]) if row else None

    async def acknowledgement_message_id(self, reference: str) -> str | None:
        """The Message-ID of the acknowledgement mailed for a complaint, if one was."""
        row = await self._file.one(
            "SELECT provider_message_id FROM notifications WHERE reference = ?"
            " AND medium = 'email' AND purpose = 'acknowledgement'"
            " AND status IN ('sent', 'announced') ORDER BY updated DESC LIMIT 1",
            (reference,),
        )
        found = str(row[0] or "") if row else ""
        return found if found.startswith("<") and found.endswith(">") else None

    async def latest_email(self, reference: str) -> SentEmail | None:
        """The last email sent about a complaint (to act on its bounce)."""
        row = await self._file.one(
            "SELECT notification_id, purpose, recipient, values_json FROM notifications"
            " WHERE reference = ? AND medium = 'email' AND status IN ('sent', 'announced')"
            " ORDER BY updated DESC LIMIT 1",
            (reference,),
        )
        if row is None:
            return None
        return SentEmail(str(row[0]), str(row[1]), str(row[2] or ""), json.loads(row[3] or "{}"))


_RECORD = (
    "INSERT INTO notifications VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)"
    " ON CONFLICT(notification_id) DO UPDATE SET status = excluded.status,"
    " attempts = attempts + 1,"
    " provider_message_id = coalesce(excluded.provider_message_id, provider_message_id),"
    " recipient = coalesce(excluded.recipient, recipient),"
    " values_json = coalesce(excluded.values_json, values_json),"
    " updated = excluded.updated"
)
_REMEMBER = (
    "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(reference) DO UPDATE SET name = coalesce(excluded.name, name),"
    " email = coalesce(excluded.email, email), phone = coalesce(excluded.phone, phone),"
    " postal_address = coalesce(excluded.postal_address, postal_address),"
    " language = coalesce(excluded.language, language), updated = excluded.updated"
)


def _record_row(entry: LedgerEntry) -> tuple[Any, ...]:
    values_json = to_json(entry.values).decode() if entry.values is not None else None
    return (
        entry.notification_id,
        entry.reference,
        entry.purpose,
        entry.medium,
        entry.status,
        entry.provider_message_id,
        time.time(),
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
