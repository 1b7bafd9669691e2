"""Personal values of state rows, sealed with the master keys (``gateway.store.keyring``).

The notifier's ``contacts`` (how to reach the person of each complaint: name, email, phone,
postal address) are kept sealed, value by value: AES-256-GCM under the current master key, the
key's id in the row's ``key_id`` column (NULL: a row written in clear by an earlier version,
read as it is and sealed by ``intake-gateway keys rotate``). Each value's associated data names
its row and field, so a sealed value copied to another row or field does not open.

The ``notifications`` rows keep, besides their status, whom each message went to and the values
it was rendered from (to resend or act on a bounce): both sealed the same way, each with its
key's id beside it (``recipient_key_id``, ``values_key_id``: a claim and its outcome may be
written under different keys, around a rotation), and the recipient also as a keyed hash
(``recipient_hash``: an inbound SMS is tied to the complaint we last wrote to that number
without the number in clear). Rows of an earlier version (``values_json`` and ``recipient`` in
clear, no key id) are read as they are and sealed by rotation.

Contacts given with a complaint for the "send documents" check are not here: they are kept as
keyed hashes only (``gateway.store.state.keyed_contact_hash``).

``PersonalDataStore`` is what a store holding sealed values offers the keyring's owner: it is
handed the keyring once it is open, says which master keys seal its rows (checked at start),
and re-seals them under the current key (rotation).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_core import to_json

from gateway.notifier.ledger import Contact, LedgerEntry
from gateway.store.keyring import Keyring
from gateway.store.state import keyed_contact_hash

SEALED_FIELDS = ("name", "email", "phone", "postal_address")
Values = tuple[str | None, ...]  # the SEALED_FIELDS of a row, in that order


class PersonalDataStore(Protocol):
    def use_keyring(self, keyring: Keyring) -> None: ...

    async def sealing_key_ids(self) -> set[str]:
        """The master keys sealing rows now."""
        ...

    async def reseal(self) -> int:
        """Rows not sealed by the current key (or in clear) sealed by it; how many."""
        ...


def context(reference: str, field: str) -> bytes:
    return b"contact|" + reference.encode() + b"|" + field.encode()


def seal_contact(keyring: Keyring, contact: Contact) -> tuple[str, Values]:
    """(key id, the sealed values) of a contact, under the current key."""
    sealed: list[str | None] = []
    for field in SEALED_FIELDS:
        value = getattr(contact, field)
        if value is None:
            sealed.append(None)
            continue
        _, text = keyring.seal_text(value, context(contact.reference, field))
        sealed.append(text)
    return keyring.current.id, tuple(sealed)


def open_values(keyring: Keyring, reference: str, key_id: str | None, values: Values) -> Values:
    """The values of a row as given (``key_id`` None: a row in clear)."""
    if key_id is None:
        return values
    return tuple(
        None if value is None else keyring.open_text(key_id, value, context(reference, field))
        for field, value in zip(SEALED_FIELDS, values, strict=True)
    )


def merged(kept: Contact | None, given: Contact) -> Contact:
    """What is known of the person: the values given now, else those kept."""
    if kept is None:
        return given
    updates = {
        field.name: getattr(given, field.name)
        for field in dataclasses.fields(Contact)
        if getattr(given, field.name) is not None
    }
    return dataclasses.replace(kept, **updates)


@dataclass(frozen=True)
class SealedDetails:
    """A notification's recipient and values as its row keeps them (None: not given)."""

    recipient: str | None = None
    recipient_key_id: str | None = None
    recipient_hash: str | None = None
    values: str | None = None
    values_key_id: str | None = None

    def columns(self) -> tuple[str | None, ...]:
        """In the order of ``DETAIL_COLUMNS``."""
        return (
            self.recipient,
            self.recipient_key_id,
            self.recipient_hash,
            self.values,
            self.values_key_id,
        )


DETAIL_COLUMNS = "recipient, recipient_key_id, recipient_hash, values_sealed, values_key_id"
# The upsert's update of those columns, the same on both backends: a value given replaces the
# one kept, with its key id; the values in clear of an earlier version go once sealed ones
# replace them.
DETAILS_UPDATE = (
    " recipient_key_id = CASE WHEN excluded.recipient IS NULL"
    " THEN notifications.recipient_key_id ELSE excluded.recipient_key_id END,"
    " recipient = coalesce(excluded.recipient, notifications.recipient),"
    " recipient_hash = coalesce(excluded.recipient_hash, notifications.recipient_hash),"
    " values_key_id = CASE WHEN excluded.values_sealed IS NULL"
    " THEN notifications.values_key_id ELSE excluded.values_key_id END,"
    " values_json = CASE WHEN excluded.values_sealed IS NULL THEN notifications.values_json END,"
    " values_sealed = coalesce(excluded.values_sealed, notifications.values_sealed),"
)


def _detail_context(notification_id: str, part: str) -> bytes:
    return b"notification|" + notification_id.encode() + b"|" + part.encode()


def seal_details(
    keyring: Keyring,
    pepper: bytes,
    notification_id: str,
    recipient: str | None,
    values_json: bytes | None,
) -> SealedDetails:
    """A notification's recipient and values (as JSON) sealed under the current key; the
    recipient also as its keyed hash."""
    recipient_part: tuple[str | None, str | None] = (None, None)
    values_part = recipient_part
    if recipient is not None:
        recipient_part = keyring.seal_text(recipient, _detail_context(notification_id, "recipient"))
    if values_json is not None:
        context = _detail_context(notification_id, "values")
        values_part = keyring.seal_text(values_json.decode(), context)
    return SealedDetails(
        recipient=recipient_part[1],
        recipient_key_id=recipient_part[0],
        recipient_hash=keyed_contact_hash(pepper, recipient) if recipient is not None else None,
        values=values_part[1],
        values_key_id=values_part[0],
    )


def values_json_of(values: Any) -> bytes | None:
    return to_json(values) if values is not None else None


class DetailSealer:
    """``seal_details`` for the ledger's writes of one keyring. A notification's row is written
    three or four times (its claim with its values, then its outcomes without them), each with
    the same recipient: the recipient and the values are each sealed once per notification and
    the same sealed text written again (no nonce is used twice: it is the same ciphertext), not
    sealed anew at each write."""

    CACHED = 2048  # sealed parts: two a notification

    def __init__(self, keyring: Keyring, pepper: bytes) -> None:
        self.keyring = keyring
        self._pepper = pepper
        self._sealed: dict[tuple[str, str | None, bytes | None], SealedDetails] = {}

    def entry(self, entry: LedgerEntry) -> SealedDetails:
        recipient = self._once(entry.notification_id, entry.recipient, None)
        values = self._once(entry.notification_id, None, values_json_of(entry.values))
        return dataclasses.replace(
            recipient, values=values.values, values_key_id=values.values_key_id
        )

    def _once(
        self, notification_id: str, recipient: str | None, values_json: bytes | None
    ) -> SealedDetails:
        """One part (the other None) sealed, once for the notification's rows."""
        if recipient is None and values_json is None:
            return _NOTHING
        key = (notification_id, recipient, values_json)
        if (found := self._sealed.get(key)) is None:
            found = seal_details(
                self.keyring, self._pepper, notification_id, recipient, values_json
            )
            if len(self._sealed) >= self.CACHED:
                self._sealed.clear()
            self._sealed[key] = found
        return found


_NOTHING = SealedDetails()


@dataclass(frozen=True)
class StoredDetails:
    """A ``notifications`` row's recipient and values as read: sealed (with their key ids) or,
    written by an earlier version, in clear (``recipient`` without key id, ``values_json``)."""

    notification_id: str
    recipient: str | None
    recipient_key_id: str | None
    values_sealed: str | None
    values_key_id: str | None
    values_json: str | None

    def opened_recipient(self, keyring: Keyring) -> str | None:
        if self.recipient is None or self.recipient_key_id is None:
            return self.recipient
        context = _detail_context(self.notification_id, "recipient")
        return keyring.open_text(self.recipient_key_id, self.recipient, context)

    def opened_values(self, keyring: Keyring) -> Any:
        """The values (None: none kept)."""
        if self.values_sealed is not None and self.values_key_id is not None:
            context = _detail_context(self.notification_id, "values")
            return json.loads(keyring.open_text(self.values_key_id, self.values_sealed, context))
        return json.loads(self.values_json) if self.values_json else None

    def resealed(self, keyring: Keyring, pepper: bytes) -> SealedDetails:
        """Its recipient and values under the current key (rotation)."""
        return seal_details(
            keyring,
            pepper,
            self.notification_id,
            self.opened_recipient(keyring),
            values_json_of(self.opened_values(keyring)),
        )


STORED_DETAIL_COLUMNS = (
    "notification_id, recipient, recipient_key_id, values_sealed, values_key_id, values_json"
)


class TrackerNotes:
    """The tracker's personal text, sealed: the office's note for the person, kept in a
    ``status_changed`` entry's details (``note``) and as the complaint's ``status_note``. The
    row's key id beside it (``key_id`` of the entry, ``status_note_key_id`` of the complaint);
    None: in clear, written by an earlier version (read as it is, sealed by rotation)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def sealed_details(self, event_id: str, details: dict[str, Any]) -> tuple[str, str | None]:
        """The entry's details as JSON text, its note sealed; the key's id (None: no note)."""
        note = details.get("note")
        if note is None:
            return json.dumps(details), None
        key_id, text = self.keyring.seal_text(str(note), _note_context("entry", event_id))
        return json.dumps({**details, "note": text}), key_id

    def opened_details(
        self, event_id: str, details: dict[str, Any], key_id: str | None
    ) -> dict[str, Any]:
        note = details.get("note")
        if key_id is None or note is None:
            return details
        opened = self.keyring.open_text(key_id, str(note), _note_context("entry", event_id))
        return {**details, "note": opened}

    def sealed_note(self, reference: str, note: str | None) -> tuple[str | None, str | None]:
        """(the note sealed, the key's id), or (None, None)."""
        if note is None:
            return None, None
        key_id, text = self.keyring.seal_text(note, _note_context("complaint", reference))
        return text, key_id

    def opened_note(self, reference: str, note: str | None, key_id: str | None) -> str | None:
        if key_id is None or note is None:
            return note
        return self.keyring.open_text(key_id, note, _note_context("complaint", reference))


def _note_context(kind: str, name: str) -> bytes:
    return b"tracker-note|" + kind.encode() + b"|" + name.encode()
