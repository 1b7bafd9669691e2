"""The embedded ``NotificationLedger``: SQLite under ``GATEWAY_DATA_DIR/state`` (one machine).

See ``gateway.notifier.ledger`` for what it promises. Contacts, and the recipient and values of
each notification, are kept in this file only, which is readable by the gateway's user alone,
sealed (``gateway.store.sealed``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from gateway.errors import StateStoreError
from gateway.notifier.ledger import (
    Contact,
    LedgerEntry,
    Outcome,
    SentEmail,
    message_id_or_none,
)
from gateway.store.datakeys import distinct_values
from gateway.store.keyring import Keyring
from gateway.store.sealed import (
    DETAIL_COLUMNS,
    DETAILS_UPDATE,
    STORED_DETAIL_COLUMNS,
    DetailSealer,
    StoredDetails,
    Values,
    merged,
    open_values,
    seal_contact,
)
from gateway.store.secrets import contact_pepper
from gateway.store.sqlite import SqliteFile
from gateway.store.state import keyed_contact_hash

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
_ADDED_COLUMNS = {
    "notifications": {
        "claimed_by": "TEXT",
        "claimed_until": "REAL",
        # the recipient and values sealed (``gateway.store.sealed``); values_json: in clear,
        # written by an earlier version
        "recipient_key_id": "TEXT",
        "recipient_hash": "TEXT",
        "values_sealed": "TEXT",
        "values_key_id": "TEXT",
    },
    "contacts": {"key_id": "TEXT"},  # the master key sealing the row's values (NULL: clear)
}
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS contacts_key_id ON contacts (key_id)",
    "CREATE INDEX IF NOT EXISTS notifications_by_recipient_hash"
    " ON notifications (recipient_hash, medium)",
    "CREATE INDEX IF NOT EXISTS notifications_recipient_key_id ON notifications (recipient_key_id)",
    "CREATE INDEX IF NOT EXISTS notifications_values_key_id ON notifications (values_key_id)",
)
RESEAL_BATCH = 1000


class SqliteLedger:
    """``keyring``: what seals the contacts (given later by ``use_keyring``; in memory, without
    one, a throw-away key)."""

    def __init__(self, directory: Path | None, keyring: Keyring | None = None) -> None:
        self._file = SqliteFile(directory / "notifier.sqlite" if directory else None, _SCHEMA)
        self._file.add_columns(_ADDED_COLUMNS, _ADDED_INDEXES)
        self._keyring = keyring or (Keyring.ephemeral() if directory is None else None)
        self._pepper = contact_pepper(directory)  # of the recipients' hashes
        self._detail_sealer: DetailSealer | None = None

    async def close(self) -> None:
        self._file.close()

    def use_keyring(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._detail_sealer = None

    def _sealer(self) -> DetailSealer:
        if self._detail_sealer is None or self._detail_sealer.keyring is not self.keyring:
            self._detail_sealer = DetailSealer(self.keyring, self._pepper)
        return self._detail_sealer

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise StateStoreError("notifier ledger: contacts used before the keys were opened")
        return self._keyring

    async def outcome(self, notification_id: str) -> Outcome | None:
        row = await self._file.one(
            "SELECT status, provider_message_id FROM notifications WHERE notification_id = ?",
            (notification_id,),
            quick=True,
        )
        return Outcome(row[0], row[1]) if row else None

    async def claim(self, entry: LedgerEntry, owner: str, lease_s: float) -> bool:
        now = time.time()
        row = (*self._record_row(entry, "sending", now), owner, now + lease_s)

        def claim(connection: sqlite3.Connection) -> bool:
            return connection.execute(_CLAIM, (*row, now)).fetchone() is not None

        return await self._file.change(claim)

    async def record(self, entry: LedgerEntry) -> None:
        """Returns once the entry is committed (together with the others waiting then)."""
        row = self._record_row(entry, entry.status, time.time())
        await self._file.write(_RECORD, row)

    def _record_row(self, entry: LedgerEntry, status: str, now: float) -> tuple[Any, ...]:
        sealed = self._sealer().entry(entry)
        return (
            entry.notification_id,
            entry.reference,
            entry.purpose,
            entry.medium,
            status,
            entry.provider_message_id,
            now,
            *sealed.columns(),
        )

    async def remember_contact(self, contact: Contact) -> None:
        """The values given now over those kept, every one sealed by the current key."""
        keyring = self.keyring

        def remember(connection: sqlite3.Connection) -> None:
            whole = merged(_contact(connection, keyring, contact.reference), contact)
            key_id, values = seal_contact(keyring, whole)
            row = (whole.reference, *values, whole.language, time.time(), key_id)
            connection.execute(_REMEMBER, row)

        await self._file.change(remember)

    async def contact(self, reference: str) -> Contact | None:
        keyring = self.keyring
        found: Contact | None = await self._file.read(
            lambda connection: _contact(connection, keyring, reference), quick=True
        )
        return found

    async def sealing_key_ids(self) -> set[str]:
        def query(connection: sqlite3.Connection) -> set[str]:
            return (
                distinct_values(connection, "contacts", "key_id")
                | distinct_values(connection, "notifications", "recipient_key_id")
                | distinct_values(connection, "notifications", "values_key_id")
            )

        return await self._file.read(query)

    async def reseal(self) -> int:
        """Contacts and notifications not sealed by the current key (or in clear) sealed by
        it; how many rows."""
        return await self._reseal_contacts() + await self._reseal_notifications()

    async def _reseal_notifications(self) -> int:
        keyring, pepper, done = self.keyring, self._pepper, 0

        def reseal(connection: sqlite3.Connection) -> int:
            rows = connection.execute(_NOT_SEALED_BY, (keyring.current.id,) * 2 + (RESEAL_BATCH,))
            found = [StoredDetails(*row) for row in rows.fetchall()]
            for stored in found:
                connection.execute(
                    _RESEAL_NOTIFICATION,
                    (
                        *stored.resealed(keyring, pepper).columns(),
                        stored.notification_id,
                        stored.recipient_key_id,
                        stored.values_key_id,
                    ),
                )
            return len(found)

        while changed := await self._file.change(reseal):
            done += changed
        return done

    async def _reseal_contacts(self) -> int:
        keyring, done = self.keyring, 0

        def reseal(connection: sqlite3.Connection) -> int:
            rows = connection.execute(
                f"SELECT {_CONTACT_COLUMNS}, key_id FROM contacts"  # noqa: S608 (constants only)
                " WHERE key_id IS NULL OR key_id != ? LIMIT ?",
                (keyring.current.id, RESEAL_BATCH),
            ).fetchall()
            for row in rows:
                contact = _opened(keyring, row)
                key_id, values = seal_contact(keyring, contact)
                connection.execute(
                    "UPDATE contacts SET name = ?, email = ?, phone = ?, postal_address = ?,"
                    " key_id = ? WHERE reference = ? AND key_id IS ?",
                    (*values, key_id, contact.reference, row[-1]),
                )
            return len(rows)

        while changed := await self._file.change(reseal):
            done += changed
        return done

    async def latest_sms_reference(self, phone: str, within_days: int) -> str | None:
        """Found by the number's keyed hash (or, in a row of an earlier version, in clear)."""
        row = await self._file.one(
            "SELECT reference FROM notifications WHERE medium = 'sms'"
            " AND status IN ('sent', 'announced')"
            " AND (recipient_hash = ? OR (recipient_hash IS NULL AND recipient = ?))"
            " AND updated >= ? ORDER BY updated DESC LIMIT 1",
            (keyed_contact_hash(self._pepper, phone), phone, time.time() - within_days * 86_400),
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
            f"SELECT purpose, {STORED_DETAIL_COLUMNS} FROM notifications"  # noqa: S608 (constants only)
            " WHERE reference = ? AND medium = 'email' AND status IN ('sent', 'announced')"
            " ORDER BY updated DESC LIMIT 1",
            (reference,),
        )
        if row is None:
            return None
        stored = StoredDetails(*row[1:])
        recipient = stored.opened_recipient(self.keyring) or ""
        values = stored.opened_values(self.keyring) or {}
        return SentEmail(stored.notification_id, str(row[0]), recipient, values)


_CONTACT_COLUMNS = "reference, name, email, phone, postal_address, language"


def _contact(connection: sqlite3.Connection, keyring: Keyring, reference: str) -> Contact | None:
    row = connection.execute(
        f"SELECT {_CONTACT_COLUMNS}, key_id FROM contacts WHERE reference = ?",  # noqa: S608 (constants only)
        (reference,),
    ).fetchone()
    return _opened(keyring, row) if row else None


def _opened(keyring: Keyring, row: tuple[Any, ...]) -> Contact:
    """A contacts row (``_CONTACT_COLUMNS``, key_id) as the person's contact, opened."""
    values: Values = tuple(row[1:5])
    name, email, phone, address = open_values(keyring, row[0], row[6], values)
    return Contact(row[0], name, email, phone, address, row[5])


_COLUMNS = (
    "notification_id, reference, purpose, medium, status, attempts, provider_message_id,"
    f" updated, {DETAIL_COLUMNS}"
)
_RECORD = (
    f"INSERT INTO notifications ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 (constants only)
    " ON CONFLICT(notification_id) DO UPDATE SET status = excluded.status,"
    " attempts = attempts + 1,"
    " provider_message_id = coalesce(excluded.provider_message_id, provider_message_id),"
    f"{DETAILS_UPDATE}"
    " updated = excluded.updated"
)
_CLAIM = (
    f"INSERT INTO notifications ({_COLUMNS}, claimed_by, claimed_until)"  # noqa: S608 (constants only)
    " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(notification_id) DO UPDATE SET attempts = attempts + 1,"
    f"{DETAILS_UPDATE}"
    " updated = excluded.updated, claimed_by = excluded.claimed_by,"
    " claimed_until = excluded.claimed_until"
    " WHERE status = 'sending'"
    " AND (claimed_by IS NULL OR claimed_by = excluded.claimed_by OR claimed_until < ?)"
    " RETURNING 1"
)
_NOT_SEALED_BY = (
    f"SELECT {STORED_DETAIL_COLUMNS} FROM notifications"  # noqa: S608 (constants only)
    " WHERE (recipient IS NOT NULL AND recipient_key_id IS NOT ?)"
    " OR (values_sealed IS NOT NULL AND values_key_id IS NOT ?)"
    " OR values_json IS NOT NULL LIMIT ?"
)
_RESEAL_NOTIFICATION = (
    f"UPDATE notifications SET ({DETAIL_COLUMNS}, values_json)"  # noqa: S608 (constants only)
    " = (?, ?, ?, ?, ?, NULL)"
    " WHERE notification_id = ? AND recipient_key_id IS ? AND values_key_id IS ?"
)
_REMEMBER = (
    "INSERT INTO contacts (reference, name, email, phone, postal_address, language, updated,"
    " key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(reference) DO UPDATE SET name = coalesce(excluded.name, name),"
    " email = coalesce(excluded.email, email), phone = coalesce(excluded.phone, phone),"
    " postal_address = coalesce(excluded.postal_address, postal_address),"
    " language = coalesce(excluded.language, language), updated = excluded.updated,"
    " key_id = excluded.key_id"
)
