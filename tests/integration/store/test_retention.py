"""Retention on both state backends (SQLite files, a real PostgreSQL), objects sealed in files:
complaints aged on purpose, retention run at a chosen "now". What is past due goes (objects
with their data keys), what another complaint in retention still names stays, what is on hold
stays until released, and the counts say so; a dry run deletes nothing."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from gateway.errors import ClaimNotFound
from gateway.notifier.ledger import Contact, LedgerEntry
from gateway.privacy.retention import Retention
from gateway.settings import GatewaySettings, RetentionSettings
from gateway.store.backends import StateBackend, open_state_backend
from gateway.store.catalog import CatalogEntry
from gateway.store.claims import FileClaimStore
from gateway.store.dlq import DlqRecord
from gateway.store.encrypted import EncryptedClaimStore

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
DAYS = RetentionSettings(raw_days=365, attachments_days=365, state_days=365, dlq_days=90)


class World:
    """A backend, its sealed object store, and a way to age a complaint behind their backs."""

    def __init__(
        self, backend: StateBackend, claims: EncryptedClaimStore, url: str | None, state: Path
    ) -> None:
        self.backend, self.claims, self.url, self.state = backend, claims, url, state

    async def complaint(self, reference: str, *objects: tuple[bytes, str]) -> list[str]:
        shas = []
        for content, role in objects:
            stored = await self.claims.put(content)
            entry = CatalogEntry(stored.sha256, reference, f"{role}.bin", "application/pdf", role)
            await self.backend.catalog.record_objects([entry])
            shas.append(stored.sha256)
        await self.backend.state.record_contacts(reference, [f"{reference}@example.org"])
        await self.backend.ledger.remember_contact(Contact(reference, name="Marie Tremblay"))
        entry = LedgerEntry(str(uuid.uuid4()), reference, "acknowledgement", "email", "sent")
        await self.backend.ledger.record(entry)
        return shas

    async def age(self, reference: str, days: int) -> None:
        """The complaint as if received ``days`` ago."""
        shift = days * 86_400
        if self.url is None:
            for file, table, column in (
                ("state.sqlite", "stored_object", "recorded"),
                ("notifier.sqlite", "contacts", "updated"),
                ("notifier.sqlite", "notifications", "updated"),
            ):
                with sqlite3.connect(self.state / file) as db:
                    db.execute(
                        f"UPDATE {table} SET {column} = {column} - ? WHERE reference = ?",  # noqa: S608
                        (shift, reference),
                    )
            return
        connection = await asyncpg.connect(self.url)
        try:
            for table, column in (
                ("stored_object", "recorded"),
                ("notifier_contacts", "updated"),
                ("notifications", "updated"),
            ):
                await connection.execute(
                    f"UPDATE {table} SET {column} = {column} - make_interval(days => $1)"  # noqa: S608
                    " WHERE reference = $2",
                    days,
                    reference,
                )
        finally:
            await connection.close()

    async def closed(self, reference: str, days: int) -> None:
        """The tracker saw the complaint closed ``days`` ago (received long before)."""
        closed, received = NOW - timedelta(days=days), NOW - timedelta(days=days + 400)
        columns = "reference, received_at, closed_at, complete, reachable, status, documents"
        if self.url is None:
            micros = (int(received.timestamp() * 1e6), int(closed.timestamp() * 1e6))
            with sqlite3.connect(self.state / "tracker.sqlite") as db:
                values = "?, ?, ?, 1, 1, 'closed', 0"
                db.execute(
                    f"INSERT INTO tracked_complaint ({columns}) VALUES ({values})",  # noqa: S608
                    (reference, *micros),
                )
            return
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute(
                f"INSERT INTO tracked_complaint ({columns})"  # noqa: S608
                " VALUES ($1, $2, $3, true, true, 'closed', 0)",
                reference,
                received,
                closed,
            )
        finally:
            await connection.close()

    async def rejected(self, content: bytes, days: int) -> str:
        stored = await self.claims.put(content)
        record = DlqRecord(
            id=str(uuid.uuid4()),
            channel="webform",
            reason_code="invalid_fields",
            reason="test",
            source_key=f"webform:{uuid.uuid4()}",
            source="urn:intake-gateway:webform",
            source_id=None,
            source_uri=stored.uri,
            received_at=NOW - timedelta(days=days),
            recorded_at=NOW - timedelta(days=days),
        )
        await self.backend.dlq.add(record)
        return stored.sha256

    async def present(self, sha256: str) -> bool:
        try:
            await self.claims.get(sha256)
        except ClaimNotFound:
            return False
        return True


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = GatewaySettings.model_validate(
        {"data_dir": tmp_path, "state_url": SecretStr(url) if url else None}
    )
    backend = await open_state_backend(settings)
    claims = EncryptedClaimStore(FileClaimStore(tmp_path), backend.keyring, backend.data_keys)
    try:
        yield World(backend, claims, url, tmp_path / "state")
    finally:
        await backend.close()


async def test_given_aged_complaints_then_what_is_past_due_goes_and_the_rest_stays(
    world: World,
) -> None:
    old_raw, shared = await world.complaint(
        "PL-OLD", (b"%raw of an old complaint", "raw"), (b"%PDF shared letter", "attachment")
    )
    young_raw, _ = await world.complaint(
        "PL-YOUNG", (b"%raw of a young complaint", "raw"), (b"%PDF shared letter", "attachment")
    )
    [held_raw] = await world.complaint("PL-HELD", (b"%raw of a held complaint", "raw"))
    await world.age("PL-OLD", 400)
    await world.age("PL-YOUNG", 100)
    await world.age("PL-HELD", 400)
    assert await world.backend.privacy.hold("PL-HELD", "cli:test", "inquiry 2027-14")
    old_rejection = await world.rejected(b"%rejected long ago", days=100)
    new_rejection = await world.rejected(b"%rejected lately", days=10)
    retention = Retention(DAYS, world.backend.complaints, world.backend.privacy, world.claims)

    dry = await retention.run(NOW, dry_run=True)
    expected = {
        "objects": 2,  # the old complaint's raw copy, the old rejection's
        "objects_kept": 1,  # the letter the young complaint also sent
        "catalog_rows": 2,
        "dlq_records": 1,
        "complaints_state": 1,
    }
    assert {name: dry.counts[name] for name in expected} == expected
    assert await world.present(old_raw)
    assert await world.backend.ledger.contact("PL-OLD") is not None

    done = await retention.run(NOW)
    assert {name: done.counts[name] for name in expected} == expected
    assert done.counts["contacts"] == done.counts["notifications"] == 1
    assert done.counts["contact_hashes"] == 1
    assert not await world.present(old_raw)
    assert not await world.present(old_rejection)
    assert await world.backend.data_keys.delete_keys_of(old_raw) == 0  # shredded already
    assert await world.present(shared)  # the young complaint still needs it
    assert await world.backend.complaints.holders(shared) == {"PL-YOUNG"}
    assert await world.present(young_raw)
    assert await world.present(held_raw)
    assert await world.present(new_rejection)
    assert await world.backend.ledger.contact("PL-OLD") is None
    assert not await world.backend.state.contact_matches("PL-OLD", "PL-OLD@example.org")
    assert await world.backend.ledger.contact("PL-HELD") is not None

    again = await retention.run(NOW)
    assert again.counts["objects"] == again.counts["catalog_rows"] == 0  # nothing left to do

    assert await world.backend.privacy.release("PL-HELD")
    released = await retention.run(NOW)
    assert released.counts["objects"] == 1
    assert not await world.present(held_raw)
    later = await retention.run(NOW + timedelta(days=300))  # the young one's time has come
    assert later.counts["objects"] == 3  # its raw copy, the shared letter at last, a rejection
    assert later.counts["dlq_records"] == 1
    assert not await world.present(shared)
    assert not await world.present(new_rejection)


async def test_given_a_complaint_the_tracker_saw_closed_then_its_time_counts_from_closing(
    world: World,
) -> None:
    [raw] = await world.complaint("PL-CLOSED", (b"%raw of a closed complaint", "raw"))
    await world.age("PL-CLOSED", 430)
    await world.closed("PL-CLOSED", 30)  # received 430 days ago, closed 30 days ago
    retention = Retention(DAYS, world.backend.complaints, world.backend.privacy, world.claims)
    assert (await retention.run(NOW)).counts["objects"] == 0
    assert await world.present(raw)
    assert (await retention.run(NOW + timedelta(days=340))).counts["objects"] == 1
    assert not await world.present(raw)
    assert (await retention.run(NOW + timedelta(days=1000))).counts["complaints_tracker"] == 0
    tracked = await retention.run(NOW + timedelta(days=1070))  # tracker_days from its closing
    assert tracked.counts["complaints_tracker"] == 1
    assert tracked.counts["tracker_rows"] == 1
