"""The shared ``NotificationLedger`` on PostgreSQL (see ``gateway.notifier.ledger``).

A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` on the notification's row: the
row is locked by the statement, so of two notifiers claiming at once one wins and the other
gets no row back. Lease times are the database's clock, which every notifier shares. Contacts,
and each notification's recipient and values, are sealed (``gateway.store.sealed``).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.errors import StateStoreError
from gateway.notifier.ledger import (
    Contact,
    LedgerEntry,
    Outcome,
    SentEmail,
    message_id_or_none,
)
from gateway.store.datakeys import distinct_query
from gateway.store.keyring import Keyring
from gateway.store.postgres.database import Database
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
from gateway.store.state import keyed_contact_hash

_COLUMNS = (
    f"notification_id, reference, purpose, medium, status, provider_message_id, {DETAIL_COLUMNS}"
)
_RECORD = (
    f"INSERT INTO notifications ({_COLUMNS})"  # noqa: S608 (constants only)
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (notification_id) DO UPDATE SET status = excluded.status,"
    " attempts = notifications.attempts + 1,"
    " provider_message_id = coalesce(excluded.provider_message_id,"
    " notifications.provider_message_id),"
    f"{DETAILS_UPDATE}"
    " updated = now()"
)
_CLAIM = (
    f"INSERT INTO notifications ({_COLUMNS}, claimed_by, claimed_until)"  # noqa: S608 (constants only)
    " VALUES ($1, $2, $3, $4, 'sending', $5, $6, $7, $8, $9, $10, $11,"
    " now() + make_interval(secs => $12))"
    " ON CONFLICT (notification_id) DO UPDATE SET attempts = notifications.attempts + 1,"
    f"{DETAILS_UPDATE}"
    " updated = now(), claimed_by = excluded.claimed_by,"
    " claimed_until = excluded.claimed_until"
    " WHERE notifications.status = 'sending' AND (notifications.claimed_by IS NULL"
    " OR notifications.claimed_by = excluded.claimed_by OR notifications.claimed_until < now())"
    " RETURNING 1"
)
_NOTIFICATIONS_NOT_SEALED_BY = (
    f"SELECT {STORED_DETAIL_COLUMNS} FROM notifications"  # noqa: S608 (constants only)
    " WHERE (recipient IS NOT NULL AND recipient_key_id IS DISTINCT FROM $1)"
    " OR (values_sealed IS NOT NULL AND values_key_id IS DISTINCT FROM $1)"
    " OR values_json IS NOT NULL LIMIT $2"
)
_RESEAL_NOTIFICATION = (
    f"UPDATE notifications SET ({DETAIL_COLUMNS}, values_json)"  # noqa: S608 (constants only)
    " = ($1, $2, $3, $4, $5, NULL)"
    " WHERE notification_id = $6 AND recipient_key_id IS NOT DISTINCT FROM $7"
    " AND values_key_id IS NOT DISTINCT FROM $8"
)
_REMEMBER = (
    "INSERT INTO notifier_contacts"
    " (reference, name, email, phone, postal_address, language, key_id)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (reference) DO UPDATE SET"
    " name = coalesce(excluded.name, notifier_contacts.name),"
    " email = coalesce(excluded.email, notifier_contacts.email),"
    " phone = coalesce(excluded.phone, notifier_contacts.phone),"
    " postal_address = coalesce(excluded.postal_address, notifier_contacts.postal_address),"
    " language = coalesce(excluded.language, notifier_contacts.language), updated = now(),"
    " key_id = excluded.key_id"
)
_CONTACT_COLUMNS = "reference, name, email, phone, postal_address, language, key_id"
_CONTACT = f"SELECT {_CONTACT_COLUMNS} FROM notifier_contacts WHERE reference = $1"  # noqa: S608 (constants only)
_NOT_SEALED_BY = (
    f"SELECT {_CONTACT_COLUMNS} FROM notifier_contacts"  # noqa: S608 (constants only)
    " WHERE key_id IS DISTINCT FROM $1 LIMIT $2"
)
RESEAL_BATCH = 1000
_SENT = "status IN ('sent', 'announced')"
_KEY_COLUMNS = (
    ("notifier_contacts", "key_id"),
    ("notifications", "recipient_key_id"),
    ("notifications", "values_key_id"),
)


class PostgresLedger:
    """Contacts sealed with ``keyring`` (given by ``use_keyring`` once the keys are open)."""

    def __init__(self, database: Database, pepper: bytes, keyring: Keyring | None = None) -> None:
        """``pepper``: the installation's, of the recipients' keyed hashes."""
        self._db = database
        self._pepper = pepper
        self._keyring = keyring
        self._detail_sealer: DetailSealer | None = None

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

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
        row = await self._db.fetchrow(
            "SELECT status, provider_message_id FROM notifications WHERE notification_id = $1",
            notification_id,
        )
        return Outcome(row[0], row[1]) if row else None

    async def claim(self, entry: LedgerEntry, owner: str, lease_s: float) -> bool:
        identity = _entry_values(entry)[:4]  # the status is 'sending'
        won = await self._db.fetchval(_CLAIM, *identity, *self._details(entry), owner, lease_s)
        return won is not None

    async def record(self, entry: LedgerEntry) -> None:
        await self._db.execute(_RECORD, *_entry_values(entry), *self._details(entry))

    def _details(self, entry: LedgerEntry) -> tuple[Any, ...]:
        sealed = self._sealer().entry(entry)
        return (entry.provider_message_id, *sealed.columns())

    async def remember_contact(self, contact: Contact) -> None:
        """The values given now over those kept (the row locked), all sealed by the current
        key."""
        keyring = self.keyring
        async with self._db.connection() as connection, connection.transaction():
            row = await connection.fetchrow(_CONTACT + " FOR UPDATE", contact.reference)
            whole = merged(_opened(keyring, row) if row else None, contact)
            key_id, values = seal_contact(keyring, whole)
            await connection.execute(_REMEMBER, whole.reference, *values, whole.language, key_id)

    async def contact(self, reference: str) -> Contact | None:
        row = await self._db.fetchrow(_CONTACT, reference)
        return _opened(self.keyring, row) if row else None

    async def sealing_key_ids(self) -> set[str]:
        ids: set[str] = set()
        for table, column in _KEY_COLUMNS:
            ids |= {str(row[0]) for row in await self._db.fetch(distinct_query(table, column))}
        return ids

    async def reseal(self) -> int:
        """Contacts and notifications not sealed by the current key (or in clear) sealed by
        it; how many rows."""
        return await self._reseal_contacts() + await self._reseal_notifications()

    async def _reseal_notifications(self) -> int:
        keyring, done = self.keyring, 0
        current = keyring.current.id
        while rows := await self._db.fetch(_NOTIFICATIONS_NOT_SEALED_BY, current, RESEAL_BATCH):
            for row in rows:
                stored = StoredDetails(*row)
                await self._db.execute(
                    _RESEAL_NOTIFICATION,
                    *stored.resealed(keyring, self._pepper).columns(),
                    stored.notification_id,
                    stored.recipient_key_id,
                    stored.values_key_id,
                )
            done += len(rows)
        return done

    async def _reseal_contacts(self) -> int:
        keyring, done = self.keyring, 0
        while rows := await self._db.fetch(_NOT_SEALED_BY, keyring.current.id, RESEAL_BATCH):
            for row in rows:
                key_id, values = seal_contact(keyring, _opened(keyring, row))
                await self._db.execute(
                    "UPDATE notifier_contacts SET name = $1, email = $2, phone = $3,"
                    " postal_address = $4, key_id = $5"
                    " WHERE reference = $6 AND key_id IS NOT DISTINCT FROM $7",
                    *values,
                    key_id,
                    row[0],
                    row[6],
                )
            done += len(rows)
        return done

    async def latest_sms_reference(self, phone: str, within_days: int) -> str | None:
        """Found by the number's keyed hash (or, in a row of an earlier version, in clear)."""
        found = await self._db.fetchval(
            f"SELECT reference FROM notifications WHERE medium = 'sms' AND {_SENT}"  # noqa: S608 (constants only)
            " AND (recipient_hash = $1 OR (recipient_hash IS NULL AND recipient = $2))"
            " AND updated >= now() - make_interval(days => $3)"
            " ORDER BY updated DESC LIMIT 1",
            keyed_contact_hash(self._pepper, phone),
            phone,
            within_days,
        )
        return str(found) if found is not None else None

    async def acknowledgement_message_id(self, reference: str) -> str | None:
        found = await self._db.fetchval(
            "SELECT provider_message_id FROM notifications WHERE reference = $1"  # noqa: S608 (constants only)
            f" AND medium = 'email' AND purpose = 'acknowledgement' AND {_SENT}"
            " ORDER BY updated DESC LIMIT 1",
            reference,
        )
        return message_id_or_none(str(found or ""))

    async def latest_email(self, reference: str) -> SentEmail | None:
        row = await self._db.fetchrow(
            f"SELECT purpose, {STORED_DETAIL_COLUMNS} FROM notifications"  # noqa: S608 (constants only)
            f" WHERE reference = $1 AND medium = 'email' AND {_SENT}"
            " ORDER BY updated DESC LIMIT 1",
            reference,
        )
        if row is None:
            return None
        stored = StoredDetails(*row[1:])
        recipient = stored.opened_recipient(self.keyring) or ""
        values = stored.opened_values(self.keyring) or {}
        return SentEmail(stored.notification_id, str(row[0]), recipient, values)


def _entry_values(entry: LedgerEntry) -> tuple[Any, ...]:
    return (entry.notification_id, entry.reference, entry.purpose, entry.medium, entry.status)


def _opened(keyring: Keyring, row: asyncpg.Record) -> Contact:
    values: Values = (row[1], row[2], row[3], row[4])
    name, email, phone, address = open_values(keyring, row[0], row[6], values)
    return Contact(row[0], name, email, phone, address, row[5])
