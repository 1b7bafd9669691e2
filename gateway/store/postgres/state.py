"""The shared ``StateStore`` on PostgreSQL (see ``gateway.store.state`` for its promises).

Idempotency and processed inputs are ``INSERT ... ON CONFLICT DO NOTHING``: the first writer
wins, whichever replica it is. Mailbox claims carry the replica that took them (``owner``), so
each replica reads back its own after a restart. The contact pepper is the installation's
secret of that name, shared by every replica.

Message claims (``claim_messages``, migration 0009) are one statement: ``INSERT ... SELECT
FROM unnest(uids) ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE ... WHERE`` the row is this
replica's or older than the timeout ``RETURNING uid``. Of two replicas inserting one key at
once, the second waits for the first's commit and then finds the row taken (its WHERE is false
on the row as committed), so exactly one wins. The UIDs go in ascending order, so two replicas
claiming overlapping batches lock their rows in one order (no deadlock). ``claimed_at`` is the
database's ``now()``: the replicas' clocks play no part.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.store.catalog import CatalogEntry, ObjectRead
from gateway.store.postgres.database import Database
from gateway.store.process_identity import is_gone, this_process
from gateway.store.state import (
    IDEMPOTENCY_DAYS,
    PRUNE_EVERY_S,
    StoredResponse,
    keyed_contact_hash,
)


class PostgresStateStore:
    def __init__(self, database: Database, pepper: bytes, owner: str) -> None:
        """``owner``: this replica's name for its mailbox claims (stable across restarts)."""
        self._db = database
        self._pepper = pepper
        self._owner = owner
        self._pruned_at = 0.0

    async def close(self) -> None:
        """The database is closed by whoever opened it."""

    async def stored_response(self, scope: str, key: str) -> StoredResponse | None:
        row = await self._db.fetchrow(
            "SELECT body_sha256, response FROM idempotency WHERE scope = $1 AND key = $2",
            scope,
            key,
        )
        return StoredResponse(row[0], json.loads(row[1])) if row else None

    async def store_response(
        self, scope: str, key: str, body_sha256: str, response: dict[str, Any]
    ) -> None:
        await self._db.execute(
            "WITH released AS (DELETE FROM idempotency_claim WHERE scope = $1 AND key = $2)"
            " INSERT INTO idempotency (scope, key, body_sha256, response)"
            " VALUES ($1, $2, $3, $4::json) ON CONFLICT DO NOTHING",
            scope,
            key,
            body_sha256,
            json.dumps(response),
        )
        now = time.monotonic()
        if now - self._pruned_at > PRUNE_EVERY_S:  # each replica, at most once a minute
            self._pruned_at = now
            await self._db.execute(
                "DELETE FROM idempotency WHERE created < now() - make_interval(days => $1)",
                IDEMPOTENCY_DAYS,
            )
            await self._db.execute(
                "DELETE FROM idempotency_claim"
                " WHERE claimed_at < now() - make_interval(days => $1)",
                IDEMPOTENCY_DAYS,
            )

    async def claim_key(self, scope: str, key: str, lease_s: float) -> bool:
        """Free, past its lease, or its holder gone from this machine (``process_identity``):
        then this process's. A holder gone is replaced only if it is still the holder."""
        holder = this_process()
        won = await self._db.fetchval(
            "INSERT INTO idempotency_claim (scope, key, holder) VALUES ($1, $2, $3)"
            " ON CONFLICT (scope, key) DO UPDATE SET claimed_at = now(), holder = $3"
            " WHERE idempotency_claim.claimed_at < now() - make_interval(secs => $4)"
            " RETURNING true",
            scope,
            key,
            holder,
            lease_s,
        )
        if won is True:
            return True
        found = await self._db.fetchval(
            "SELECT holder FROM idempotency_claim WHERE scope = $1 AND key = $2", scope, key
        )
        if found is None or not is_gone(str(found)):
            return False
        taken = await self._db.fetchval(
            "UPDATE idempotency_claim SET claimed_at = now(), holder = $3"
            " WHERE scope = $1 AND key = $2 AND holder = $4 RETURNING true",
            scope,
            key,
            holder,
            found,
        )
        return taken is True

    async def release_key(self, scope: str, key: str) -> None:
        await self._db.execute(
            "DELETE FROM idempotency_claim WHERE scope = $1 AND key = $2", scope, key
        )

    async def record_contacts(self, reference: str, contacts: list[str]) -> None:
        rows = [(reference, self.contact_hash(contact)) for contact in contacts if contact]
        await self._db.executemany(
            "INSERT INTO complaint_contacts VALUES ($1, $2) ON CONFLICT DO NOTHING", rows
        )

    async def contact_matches(self, reference: str, contact: str) -> bool:
        found = await self._db.fetchval(
            "SELECT 1 FROM complaint_contacts WHERE reference = $1 AND contact_hash = $2",
            reference,
            self.contact_hash(contact),
        )
        return found is not None

    async def checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        row = await self._db.fetchrow(
            "SELECT uidvalidity, last_uid FROM imap_checkpoint WHERE mailbox = $1", mailbox
        )
        return (int(row[0]), int(row[1])) if row else None

    async def save_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        await self._db.execute(
            "INSERT INTO imap_checkpoint VALUES ($1, $2, $3) ON CONFLICT (mailbox) DO UPDATE"
            " SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
            mailbox,
            uidvalidity,
            last_uid,
        )

    async def add_claims(self, mailbox: str, uidvalidity: int, claims: dict[int, int]) -> None:
        rows = [(self._owner, mailbox, uidvalidity, uid, seq) for uid, seq in claims.items()]
        await self._db.executemany(
            "INSERT INTO imap_claim VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (owner, mailbox, uidvalidity, uid)"
            " DO UPDATE SET modseq = excluded.modseq",
            rows,
        )

    async def claims(self, mailbox: str, uidvalidity: int) -> dict[int, int]:
        async with self._db.connection() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM imap_claim WHERE owner = $1 AND mailbox = $2 AND uidvalidity != $3",
                self._owner,
                mailbox,
                uidvalidity,
            )
            rows = await connection.fetch(
                "SELECT uid, modseq FROM imap_claim"
                " WHERE owner = $1 AND mailbox = $2 AND uidvalidity = $3",
                self._owner,
                mailbox,
                uidvalidity,
            )
        return {int(row[0]): int(row[1]) for row in rows}

    async def drop_claims(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
        await self._db.execute(
            "DELETE FROM imap_claim WHERE owner = $1 AND mailbox = $2 AND uidvalidity = $3"
            " AND uid = ANY($4::bigint[])",
            self._owner,
            mailbox,
            uidvalidity,
            uids,
        )

    async def claim_messages(
        self, mailbox: str, uidvalidity: int, uids: list[int], stale_after_s: float
    ) -> list[int]:
        if not uids:
            return []
        rows = await self._db.fetch(
            "INSERT INTO imap_message_claim (mailbox, uidvalidity, uid, owner)"
            " SELECT $1, $2, uid, $3 FROM unnest($4::bigint[]) AS uid ORDER BY uid"
            " ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE"
            " SET owner = excluded.owner, claimed_at = now()"
            " WHERE imap_message_claim.owner = excluded.owner"
            " OR imap_message_claim.claimed_at < now() - make_interval(secs => $5)"
            " RETURNING uid",
            mailbox,
            uidvalidity,
            self._owner,
            sorted(set(uids)),
            stale_after_s,
        )
        return sorted(int(row[0]) for row in rows)

    async def release_messages(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
        await self._db.execute(
            "DELETE FROM imap_message_claim WHERE owner = $1 AND mailbox = $2"
            " AND uidvalidity = $3 AND uid = ANY($4::bigint[])",
            self._owner,
            mailbox,
            uidvalidity,
            uids,
        )

    async def claimed_messages(self, mailbox: str, uidvalidity: int) -> list[int]:
        async with self._db.connection() as connection, connection.transaction():
            await connection.execute(
                "DELETE FROM imap_message_claim"
                " WHERE owner = $1 AND mailbox = $2 AND uidvalidity != $3",
                self._owner,
                mailbox,
                uidvalidity,
            )
            rows = await connection.fetch(
                "SELECT uid FROM imap_message_claim"
                " WHERE owner = $1 AND mailbox = $2 AND uidvalidity = $3 ORDER BY uid",
                self._owner,
                mailbox,
                uidvalidity,
            )
        return [int(row[0]) for row in rows]

    async def processed_event(self, source_key: str) -> str | None:
        found = await self._db.fetchval(
            "SELECT event_id FROM processed_source WHERE source_key = $1", source_key
        )
        return str(found) if found is not None else None

    async def mark_processed(self, source_key: str, event_id: str) -> None:
        await self._db.execute(
            "INSERT INTO processed_source (source_key, event_id) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            source_key,
            event_id,
        )

    async def record_objects(self, entries: list[CatalogEntry]) -> None:
        rows = [(e.sha256, e.reference, e.filename, e.media_type, e.role) for e in entries]
        await self._db.executemany(
            "INSERT INTO stored_object (sha256, reference, filename, media_type, role)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            rows,
        )

    async def catalog_entry(self, sha256: str) -> CatalogEntry | None:
        row = await self._db.fetchrow(
            "SELECT sha256, reference, filename, media_type, role FROM stored_object"
            " WHERE sha256 = $1 ORDER BY recorded LIMIT 1",
            sha256,
        )
        return CatalogEntry(*row) if row else None

    async def record_read(self, read: ObjectRead) -> None:
        await self._db.execute(
            "INSERT INTO object_read (consumer, sha256, byte_range, read_at)"
            " VALUES ($1, $2, $3, $4)",
            read.consumer,
            read.sha256,
            read.byte_range,
            read.read_at,
        )

    async def reads_of(self, reference: str) -> list[ObjectRead]:
        rows = await self._db.fetch(
            "SELECT r.consumer, r.sha256, r.byte_range, r.read_at FROM object_read r"
            " JOIN stored_object o ON o.sha256 = r.sha256 WHERE o.reference = $1"
            " ORDER BY r.read_at, r.id",
            reference,
        )
        return [ObjectRead(row[0], row[1], row[2], row[3]) for row in rows]

    def contact_hash(self, contact: str) -> str:
        return keyed_contact_hash(self._pepper, contact)
