"""The one place a state backend is chosen: embedded SQLite and files (no ``GATEWAY_STATE_URL``)
or the PostgreSQL every replica shares. Services receive the protocols, never a backend.

What lives where (embedded: under ``GATEWAY_DATA_DIR/state``; shared: PostgreSQL):

- idempotency answers, contacts, IMAP checkpoints and claims, processed inputs:
  ``state.sqlite`` | tables ``idempotency``, ``complaint_contacts``, ``imap_*``, ...
- notifications and their claims, the persons' contacts: ``notifier.sqlite`` | ``notifications``
- duplicate index: ``duplicates.sqlite`` | ``duplicate_index``
- rate limits: each process's memory, or ``ratelimits.bin`` with several HTTP workers |
  ``rate_bucket``
- idempotency-key locks: ``keys.lock`` (POSIX record locks) | advisory locks
- link key, contact pepper: files ``link-key``, ``contact-pepper`` | ``installation_secret``
- what each stored object is, and its reads: ``state.sqlite`` | ``stored_object``,
  ``object_read``
- dead-letter records (rejected inputs to redrive or dismiss) and what was done to them:
  ``dlq.sqlite`` | ``dlq_record``, ``dlq_action``
- legal holds, erasures, reads of objects by operators: ``privacy.sqlite`` | ``legal_hold``,
  ``erasure``, ``access_record``
- where each complaint stands (the tracker's timelines, its notes for the person sealed):
  ``tracker.sqlite`` | ``tracker_entry``, ``tracked_complaint``
- the wrapped data key of each encrypted object: ``object-keys.sqlite`` | ``object_key``
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import StateStoreError
from gateway.normalizers.duplicates import DuplicateIndex
from gateway.notifier.ledger import NotificationLedger
from gateway.settings import GatewaySettings
from gateway.store.buckets import BucketStore, MemoryBuckets, SharedBuckets
from gateway.store.catalog import ObjectCatalog
from gateway.store.complaint_data import ComplaintData
from gateway.store.datakeys import DataKeyStore, SqliteDataKeys
from gateway.store.dlq import DlqStore
from gateway.store.keylocks import FileKeyLocks, KeyLocks
from gateway.store.keyring import Keyring, open_keyring
from gateway.store.postgres.buckets import PostgresBuckets
from gateway.store.postgres.complaint_data import PostgresComplaintData
from gateway.store.postgres.database import Database
from gateway.store.postgres.datakeys import PostgresDataKeys
from gateway.store.postgres.dlq import PostgresDlqStore
from gateway.store.postgres.duplicates import PostgresDuplicateIndex
from gateway.store.postgres.ledger import PostgresLedger
from gateway.store.postgres.locks import PostgresKeyLocks
from gateway.store.postgres.privacy import PostgresPrivacyRecords
from gateway.store.postgres.secrets import PostgresSecrets
from gateway.store.postgres.state import PostgresStateStore
from gateway.store.postgres.tracker import PostgresTrackerStore
from gateway.store.privacy import PrivacyRecords, SqlitePrivacyRecords
from gateway.store.sealed import PersonalDataStore
from gateway.store.secrets import CONTACT_PEPPER, FileSecrets, InstallationSecrets
from gateway.store.sqlite_complaint_data import SqliteComplaintData
from gateway.store.sqlite_dlq import SqliteDlqStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_ledger import SqliteLedger
from gateway.store.sqlite_state import SqliteStateStore
from gateway.store.sqlite_tracker import SqliteTrackerStore
from gateway.store.state import StateStore
from gateway.store.tracker import TrackerStore

LOCK_CONNECTIONS = 20  # idempotency keys held at once by one process (each holds a connection)


@dataclass
class StateBackend:
    """Every kind of state of one process, on one backend."""

    state: StateStore
    catalog: ObjectCatalog
    ledger: NotificationLedger
    duplicates: DuplicateIndex
    buckets: BucketStore
    key_locks: KeyLocks
    secrets: InstallationSecrets
    dlq: DlqStore
    tracker: TrackerStore
    data_keys: DataKeyStore
    privacy: PrivacyRecords
    complaints: ComplaintData
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    sealed: list[PersonalDataStore] = field(default_factory=list)  # rows sealed by the keys
    opened_keyring: Keyring | None = None

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()

    @property
    def keyring(self) -> Keyring:
        """The master keys (``gateway.store.keyring``), once ``open_keyring`` checked them."""
        if self.opened_keyring is None:
            raise StateStoreError("state backend: the encryption keys were not opened")
        return self.opened_keyring

    async def open_keyring(self, configured: Mapping[str, str]) -> Keyring:
        """The keys of ``GATEWAY_ENCRYPTION_KEYS`` (or the generated one) checked against what
        they seal, and handed to the stores that seal rows with them."""
        keyring = await open_keyring(configured, self.secrets.secret, self._sealing_key_ids)
        for store in self.sealed:
            store.use_keyring(keyring)
        self.opened_keyring = keyring
        return keyring

    async def _sealing_key_ids(self) -> set[str]:
        ids = await self.data_keys.master_key_ids()
        for store in self.sealed:
            ids |= await store.sealing_key_ids()
        return ids


async def open_state_backend(settings: GatewaySettings) -> StateBackend:
    """The backend the settings name, its keys opened; ConfigurationError (one line) when it
    cannot be used."""
    if settings.state_url is None:
        backend = embedded_backend(settings)
    else:
        backend = await shared_backend(settings, settings.state_url.get_secret_value())
    keys = {key_id: key.get_secret_value() for key_id, key in settings.encryption_keys.items()}
    try:
        await backend.open_keyring(keys)
    except BaseException:
        await backend.close()
        raise
    return backend


def embedded_backend(settings: GatewaySettings) -> StateBackend:
    folder = settings.data_dir / "state"
    state = SqliteStateStore(folder)
    ledger = SqliteLedger(folder)
    duplicates = SqliteDuplicateIndex(folder / "duplicates.sqlite")
    key_locks = FileKeyLocks(folder / "keys.lock")
    buckets: BucketStore = MemoryBuckets()
    dlq = SqliteDlqStore(folder)
    data_keys = SqliteDataKeys(folder)
    closers = [state.close, ledger.close, _closing(duplicates.close), key_locks.close, dlq.close]
    closers.append(data_keys.close)
    privacy = SqlitePrivacyRecords(folder)
    complaints = SqliteComplaintData(folder)
    closers += [privacy.close, complaints.close]
    tracker = SqliteTrackerStore(folder)
    closers.append(tracker.close)
    if settings.http.workers > 1:  # the HTTP workers share one table of buckets
        shared = SharedBuckets(folder / "ratelimits.bin")
        buckets = shared
        closers.append(_closing(shared.close))
    return StateBackend(
        state=state,
        catalog=state,
        ledger=ledger,
        duplicates=duplicates,
        buckets=buckets,
        key_locks=key_locks,
        secrets=FileSecrets(folder),
        dlq=dlq,
        tracker=tracker,
        data_keys=data_keys,
        privacy=privacy,
        complaints=complaints,
        closers=closers,
        sealed=[ledger, tracker],
    )


async def shared_backend(settings: GatewaySettings, url: str) -> StateBackend:
    database = await Database.open(url)
    try:
        locks = await Database.open(
            url, max_connections=LOCK_CONNECTIONS, migrate=False, holds_locks=True
        )
    except BaseException:
        await database.close()
        raise
    installation = PostgresSecrets(database)
    pepper = await installation.secret(CONTACT_PEPPER, lambda: secrets.token_bytes(32))
    state = PostgresStateStore(database, pepper, owner=replica_name(settings.data_dir))
    ledger = PostgresLedger(database, pepper)
    tracker = PostgresTrackerStore(database)
    return StateBackend(
        state=state,
        catalog=state,
        ledger=ledger,
        duplicates=PostgresDuplicateIndex(database, asyncio.get_running_loop()),
        buckets=PostgresBuckets(database),
        key_locks=PostgresKeyLocks(locks),
        secrets=installation,
        dlq=PostgresDlqStore(database),
        data_keys=PostgresDataKeys(database),
        privacy=PostgresPrivacyRecords(database),
        complaints=PostgresComplaintData(database),
        tracker=tracker,
        closers=[database.close, locks.close],
        sealed=[ledger, tracker],
    )


def replica_name(data_dir: Path) -> str:
    """This replica's name, kept in its data folder (stable across restarts): what it claims in
    a shared mailbox is found again as its own after a restart."""
    path = data_dir / "state" / "replica-name"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(uuid.uuid4()))
    return path.read_text().strip()


def _closing(close: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def closed() -> None:
        close()

    return closed
