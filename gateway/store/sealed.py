"""Personal values of state rows, sealed with the master keys (``gateway.store.keyring``).

The notifier's ``contacts`` (how to reach the person of each complaint: name, email, phone,
postal address) are kept sealed, value by value: AES-256-GCM under the current master key, the
key's id in the row's ``key_id`` column (NULL: a row written in clear by an earlier version,
read as it is and sealed by ``intake-gateway keys rotate``). Each value's associated data names
its row and field, so a sealed value copied to another row or field does not open.

Contacts given with a complaint for the "send documents" check are not here: they are kept as
keyed hashes only (``gateway.store.state.keyed_contact_hash``).

``PersonalDataStore`` is what a store holding sealed values offers the keyring's owner: it is
handed the keyring once it is open, says which master keys seal its rows (checked at start),
and re-seals them under the current key (rotation).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from gateway.notifier.ledger import Contact
from gateway.store.keyring import Keyring

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
