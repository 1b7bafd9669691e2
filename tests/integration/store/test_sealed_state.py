"""Personal values of state rows sealed at rest on both state backends (SQLite files and a real
PostgreSQL): the notifier's contacts, the recipient and values of each notification, the
tracker's notes for the person. Read back as given, nothing of them in clear in the rows,
merged value by value, an SMS tied to its complaint by the number's keyed hash, rows of an
earlier version (in clear) still read and sealed by rotation, and a key still sealing rows
needed at start."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from gateway.errors import ConfigurationError
from gateway.notifier.ledger import Contact, LedgerEntry, SentEmail
from gateway.privacy.rotation import rotate
from gateway.settings import GatewaySettings
from gateway.store.backends import StateBackend, open_state_backend
from gateway.store.keyring import new_key_text
from gateway.tracker.timeline import entry_of
from tests.integration.store.test_tracker_store import FOLD, expected, life
from tests.support.tracker import local, reference, status

pytestmark = pytest.mark.integration

K1, K2 = new_key_text(), new_key_text()
MARIE = Contact(
    "PL-AAAA-BBBB-CCCC",
    name="Marie Tremblay",
    email="marie.tremblay@example.org",
    phone="+15145550123",
    postal_address="123 rue Principale\nMontréal QC H2X 1Y4",
    language="fr",
)
IN_CLEAR = ("Marie Tremblay", "marie.tremblay@example.org", "+15145550123", "rue Principale")

Opener = Callable[..., Awaitable[StateBackend]]


@pytest.fixture(params=["sqlite", "postgres"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened: list[StateBackend] = []

    async def open_with(**keys: str) -> StateBackend:
        settings = GatewaySettings.model_validate(
            {
                "data_dir": tmp_path,
                "state_url": SecretStr(url) if url else None,
                "encryption_keys": json.dumps(keys),
            }
        )
        backend = await open_state_backend(settings)
        opened.append(backend)
        return backend

    open_with.url = url  # type: ignore[attr-defined]
    yield open_with
    for backend in opened:
        await backend.close()


class BehindTheStores:
    """The backend's rows read and written behind its stores' back, as an earlier version
    left them: SQL with ``?`` placeholders, on the SQLite file named or on PostgreSQL."""

    def __init__(self, opener: Opener, tmp_path: Path) -> None:
        self.url: str | None = opener.url  # type: ignore[attr-defined]
        self.folder = tmp_path / "state"
        self.contacts = "notifier_contacts" if self.url else "contacts"
        self.now = "now()" if self.url else "strftime('%s')"

    async def run(self, file: str, sql: str, *arguments: object) -> list[tuple[object, ...]]:
        if self.url is None:
            with sqlite3.connect(self.folder / file) as database:
                return list(database.execute(sql, arguments))
        numbers = iter(range(1, len(arguments) + 1))
        numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
        connection = await asyncpg.connect(self.url)
        try:
            return [tuple(row) for row in await connection.fetch(numbered, *arguments)]
        finally:
            await connection.close()


async def rows(opener: Opener, tmp_path: Path, table: str = "contacts") -> list[tuple[object, ...]]:
    """The rows of ``contacts`` or ``notifications`` as stored, read behind the ledger's back."""
    state = BehindTheStores(opener, tmp_path)
    name = state.contacts if table == "contacts" else table
    return await state.run("notifier.sqlite", f"SELECT * FROM {name}")  # noqa: S608 (two names)


SENT_MAIL = LedgerEntry(
    "n-mail-1",
    reference=MARIE.reference,
    purpose="acknowledgement",
    medium="email",
    status="sent",
    provider_message_id="<PL-AAAA-BBBB-CCCC.1@plaintes.example.org>",
    recipient="marie.tremblay@example.org",
    values={"name": "Marie Tremblay", "respond_by": "2026-12-23"},
)
SENT_SMS = LedgerEntry(
    "n-sms-1",
    reference=MARIE.reference,
    purpose="acknowledgement",
    medium="sms",
    status="sent",
    provider_message_id="SM0123",
    recipient="+15145550123",
    values={"name": "Marie Tremblay"},
)


async def test_given_notifications_sent_then_their_recipients_and_values_are_sealed(
    opener: Opener, tmp_path: Path
) -> None:
    backend = await opener(k1=K1)
    for entry in (SENT_MAIL, SENT_SMS):
        sending = LedgerEntry(**{**entry.__dict__, "status": "sending", "values": None})
        assert await backend.ledger.claim(sending, "notifier-1", lease_s=60)
        await backend.ledger.record(entry)
    assert await backend.ledger.latest_email(MARIE.reference) == SentEmail(
        "n-mail-1", "acknowledgement", "marie.tremblay@example.org", dict(SENT_MAIL.values or {})
    )
    assert await backend.ledger.latest_sms_reference("+15145550123", 30) == MARIE.reference
    assert await backend.ledger.latest_sms_reference("+15145550199", 30) is None
    stored = str(await rows(opener, tmp_path, "notifications"))
    assert not any(value in stored for value in IN_CLEAR)
    assert "n-mail-1" in stored  # the row is there, only its personal values sealed
    assert await backend.ledger.sealing_key_ids() == {"k1"}


async def test_given_notifications_in_clear_then_read_and_sealed_by_rotation(
    opener: Opener, tmp_path: Path
) -> None:
    first = await opener(k1=K1)
    await first.ledger.record(SENT_MAIL)
    await _write_notification_in_clear(opener, tmp_path, SENT_SMS)  # as an earlier version did
    assert await first.ledger.latest_sms_reference("+15145550123", 30) == MARIE.reference
    rotated = await opener(k2=K2, k1=K1)
    report = await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)
    assert report.resealed == 2
    assert (await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)).resealed == 0
    stored = str(await rows(opener, tmp_path, "notifications"))
    assert not any(value in stored for value in IN_CLEAR)
    only_new = await opener(k2=K2)
    assert await only_new.ledger.sealing_key_ids() == {"k2"}
    assert await only_new.ledger.latest_sms_reference("+15145550123", 30) == MARIE.reference
    sent = await only_new.ledger.latest_email(MARIE.reference)
    assert sent is not None
    assert (sent.recipient, sent.values) == (SENT_MAIL.recipient, SENT_MAIL.values)


async def test_given_a_notification_sealed_by_a_key_left_out_then_start_up_stops(
    opener: Opener,
) -> None:
    backend = await opener(k1=K1)
    await backend.ledger.record(SENT_SMS)
    with pytest.raises(ConfigurationError, match="key 'k1' still seals stored data"):
        await opener(k2=K2)


async def test_given_a_contact_when_kept_then_read_back_and_sealed_in_its_row(
    opener: Opener, tmp_path: Path
) -> None:
    backend = await opener(k1=K1)
    await backend.ledger.remember_contact(MARIE)
    assert await backend.ledger.contact(MARIE.reference) == MARIE
    [row] = await rows(opener, tmp_path)
    stored = " ".join(str(value) for value in row)
    assert not any(value in stored for value in IN_CLEAR)
    assert "k1" in row  # the key sealing it
    assert "fr" in row  # the language is no personal data


async def test_given_a_contact_given_in_parts_then_every_value_is_kept(opener: Opener) -> None:
    backend = await opener(k1=K1)
    await backend.ledger.remember_contact(Contact(MARIE.reference, name="Marie Tremblay"))
    await backend.ledger.remember_contact(Contact(MARIE.reference, phone="+15145550123"))
    kept = await backend.ledger.contact(MARIE.reference)
    assert kept == Contact(MARIE.reference, name="Marie Tremblay", phone="+15145550123")


async def test_given_rows_in_clear_then_read_and_sealed_by_rotation_with_the_new_key(
    opener: Opener, tmp_path: Path
) -> None:
    first = await opener(k1=K1)
    await first.ledger.remember_contact(MARIE)
    other = Contact("PL-DDDD-EEEE-FFFF", email="old@example.org")
    await _write_in_clear(opener, tmp_path, other)  # as an earlier version wrote it
    assert await first.ledger.contact(other.reference) == other
    rotated = await opener(k2=K2, k1=K1)
    report = await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)
    assert report.resealed == 2
    assert (await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)).resealed == 0
    assert all("k2" in row for row in await rows(opener, tmp_path))
    assert "old@example.org" not in str(await rows(opener, tmp_path))
    only_new = await opener(k2=K2)
    assert await only_new.ledger.contact(MARIE.reference) == MARIE
    assert await only_new.ledger.contact(other.reference) == other


async def test_given_contacts_sealed_by_a_key_left_out_then_start_up_stops(
    opener: Opener,
) -> None:
    backend = await opener(k1=K1)
    await backend.ledger.remember_contact(MARIE)
    with pytest.raises(ConfigurationError, match="key 'k1' still seals stored data"):
        await opener(k2=K2)


async def _write_in_clear(opener: Opener, tmp_path: Path, contact: Contact) -> None:
    state = BehindTheStores(opener, tmp_path)
    await state.run(
        "notifier.sqlite",
        f"INSERT INTO {state.contacts} (reference, name, email, phone, postal_address,"  # noqa: S608
        f" language, updated) VALUES (?, ?, ?, ?, NULL, NULL, {state.now})",
        contact.reference,
        contact.name,
        contact.email,
        contact.phone,
    )


async def _write_notification_in_clear(opener: Opener, tmp_path: Path, entry: LedgerEntry) -> None:
    state = BehindTheStores(opener, tmp_path)
    await state.run(
        "notifier.sqlite",
        "INSERT INTO notifications (notification_id, reference, purpose, medium, status,"  # noqa: S608
        f" recipient, values_json, updated) VALUES (?, ?, ?, ?, ?, ?, ?, {state.now})",
        entry.notification_id,
        entry.reference,
        entry.purpose,
        entry.medium,
        entry.status,
        entry.recipient,
        json.dumps(entry.values),
    )


NOTES = ("Dossier attribué à Luc.", "Réponse envoyée par la poste.")


async def tracker_rows(opener: Opener, tmp_path: Path) -> str:
    """Every row of the tracker's two tables as stored, as one text."""
    state = BehindTheStores(opener, tmp_path)
    entries = await state.run("tracker.sqlite", "SELECT * FROM tracker_entry")
    complaints = await state.run("tracker.sqlite", "SELECT * FROM tracked_complaint")
    return str([*entries, *complaints])


async def test_given_notes_for_the_person_then_sealed_in_the_tracker_rows(
    opener: Opener, tmp_path: Path
) -> None:
    backend = await opener(k1=K1)
    assert await backend.tracker.apply(life("sealed"), FOLD) == 6
    assert await backend.tracker.complaint(reference("sealed")) == expected("sealed")
    timeline = await backend.tracker.timeline(reference("sealed"))
    assert [entry.details["note"] for entry in timeline if "note" in entry.details] == [*NOTES]
    stored = await tracker_rows(opener, tmp_path)
    assert not any(note in stored for note in NOTES)
    assert "in_progress" in stored  # the statuses stay readable: the indicators count them
    assert await backend.tracker.sealing_key_ids() == {"k1"}


async def test_given_notes_in_clear_then_read_and_sealed_by_rotation(
    opener: Opener, tmp_path: Path
) -> None:
    first = await opener(k1=K1)
    await first.tracker.apply(life("clear"), FOLD)
    await _write_notes_in_clear(opener, tmp_path, reference("clear"))  # as an earlier version
    assert await first.tracker.complaint(reference("clear")) == expected("clear")
    assert NOTES[1] in await tracker_rows(opener, tmp_path)
    rotated = await opener(k2=K2, k1=K1)
    report = await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)
    assert report.resealed == 3  # two entries and the complaint
    assert (await rotate(rotated.keyring, rotated.data_keys, rotated.sealed)).resealed == 0
    stored = await tracker_rows(opener, tmp_path)
    assert not any(note in stored for note in NOTES)
    only_new = await opener(k2=K2)
    assert await only_new.tracker.sealing_key_ids() == {"k2"}
    assert await only_new.tracker.complaint(reference("clear")) == expected("clear")
    timeline = await only_new.tracker.timeline(reference("clear"))
    assert [entry.details["note"] for entry in timeline if "note" in entry.details] == [*NOTES]


async def test_given_a_note_sealed_by_a_key_left_out_then_start_up_stops(opener: Opener) -> None:
    backend = await opener(k1=K1)
    entry = entry_of(status("left-out", "in_progress", local("ramq", 2026, 6, 29, 9), NOTES[0]))
    assert entry is not None
    await backend.tracker.apply([entry], FOLD)
    with pytest.raises(ConfigurationError, match="key 'k1' still seals stored data"):
        await opener(k2=K2)


async def _write_notes_in_clear(opener: Opener, tmp_path: Path, complaint: str) -> None:
    """The complaint's notes in clear, their key ids gone (a row of an earlier version)."""
    state = BehindTheStores(opener, tmp_path)
    entries = await state.run(
        "tracker.sqlite",
        "SELECT event_id, details FROM tracker_entry WHERE reference = ?",
        complaint,
    )
    for event_id, details in entries:
        opened = json.loads(str(details))
        if "note" not in opened:
            continue
        opened["note"] = _clear_note(opened["status"])
        await state.run(
            "tracker.sqlite",
            "UPDATE tracker_entry SET details = ?, key_id = NULL WHERE event_id = ?",
            json.dumps(opened),
            event_id,
        )
    await state.run(
        "tracker.sqlite",
        "UPDATE tracked_complaint SET status_note = ?, status_note_key_id = NULL"
        " WHERE reference = ?",
        NOTES[1],
        complaint,
    )


def _clear_note(status: str) -> str:
    return NOTES[0] if status == "in_progress" else NOTES[1]
