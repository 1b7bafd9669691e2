"""What the intake remembers between requests, whichever replica serves them: ``StateStore``.

Two implementations side by side: ``sqlite_state.SqliteStateStore`` (embedded, the default: one
machine) and ``postgres.state.PostgresStateStore`` (``GATEWAY_STATE_URL``: every replica shares
it). ``gateway.store.backends`` chooses one from the settings; nothing else knows which.

What every implementation promises:

- **Idempotency.** ``store_response`` keeps the first answer stored under a (scope, key): a
  second store of the same key changes nothing, whoever makes it. Callers hold the key's lock
  (``KeyLocks``) around look-up, publish and store, so two requests with one key never both
  publish. Answers are kept ``IDEMPOTENCY_DAYS``. ``claim_key`` also records, durably, that a
  request is processing a key (true when it is free, its claim is older than the lease, or its
  holder is a process of this machine that has ended);
  ``store_response`` removes the claim with the answer kept, ``release_key`` without (nothing
  was published). A lock can be lost with its connection while the request goes on; the claim
  cannot.
- **Contacts** of a complaint are kept only as keyed hashes (``contact_hash``: the key is a
  secret of the installation, shared by the replicas); ``contact_matches`` is true for any of
  those recorded with the reference, compared after trimming and case-folding.
- **IMAP checkpoints** (UIDVALIDITY, last UID done) per mailbox, last write wins.
- **Mailbox claims** of this replica (``owner``), as the IMAP server holds them (keyword claims:
  ``add_claims``): recorded with their modification sequence, read back after a restart,
  dropped; claims recorded under an earlier UIDVALIDITY are forgotten when read.
- **Message claims taken in the store** (``claim_messages``: a shared mailbox whose replicas
  share this store). One atomic statement per call: a message (mailbox, UIDVALIDITY, UID) is
  won when nobody holds it, when this replica (``owner``) already does (its claim renewed), or
  when its claim is older than ``stale_after_s`` by the store's own clock (its replica died);
  of two replicas claiming one message at once exactly one wins it, whatever the interleaving.
  ``release_messages`` lets go of this replica's claims (never another's); ``claimed_messages``
  finds them again after a restart, forgetting those of an earlier UIDVALIDITY.
- **Processed inputs**: ``mark_processed`` keeps the first event id of a source key; a later
  mark changes nothing.

Every method raises ``StateStoreError`` when the store cannot be read or written (disk full,
database gone): the caller answers 503 or retries; nothing half-done is left.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

IDEMPOTENCY_DAYS = 7
# A request holding a key's claim: its publish (GATEWAY_KAFKA_PUBLISH_TIMEOUT_S), then up to
# 30 s waiting out the state database for its answer (store.patience); a claim older than this
# is a dead replica's.
IDEMPOTENCY_CLAIM_LEASE_S = 120.0
PRUNE_EVERY_S = 60.0  # expired idempotency keys are deleted at most this often


@dataclass(frozen=True)
class StoredResponse:
    body_sha256: str
    response: dict[str, Any]


class StateStore(Protocol):
    async def stored_response(self, scope: str, key: str) -> StoredResponse | None: ...

    async def store_response(
        self, scope: str, key: str, body_sha256: str, response: dict[str, Any]
    ) -> None: ...

    async def claim_key(self, scope: str, key: str, lease_s: float) -> bool:
        """True when this request may process the key: no claim on it, one past its lease, or
        one whose holder ran on this machine and is gone (``process_identity``)."""
        ...

    async def release_key(self, scope: str, key: str) -> None: ...

    async def record_contacts(self, reference: str, contacts: list[str]) -> None: ...

    async def contact_matches(self, reference: str, contact: str) -> bool: ...

    async def checkpoint(self, mailbox: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID done) of a mailbox, None before its first message."""
        ...

    async def save_checkpoint(self, mailbox: str, uidvalidity: int, last_uid: int) -> None: ...

    async def add_claims(self, mailbox: str, uidvalidity: int, claims: dict[int, int]) -> None:
        """Messages this replica claimed in a shared mailbox: UID -> modification sequence."""
        ...

    async def claims(self, mailbox: str, uidvalidity: int) -> dict[int, int]:
        """This replica's claims, UID -> modification sequence then."""
        ...

    async def drop_claims(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None: ...

    async def claim_messages(
        self, mailbox: str, uidvalidity: int, uids: list[int], stale_after_s: float
    ) -> list[int]:
        """Claim these messages for this replica; those it holds now, in UID order (see the
        module's docstring: atomic, renewed if its own, taken over once stale)."""
        ...

    async def release_messages(self, mailbox: str, uidvalidity: int, uids: list[int]) -> None:
        """This replica's claims of these messages go (they are done); others' stay."""
        ...

    async def claimed_messages(self, mailbox: str, uidvalidity: int) -> list[int]:
        """The messages this replica holds (after a restart: to finish first), in UID order;
        its claims under another UIDVALIDITY (the mailbox recreated) are forgotten."""
        ...

    async def processed_event(self, source_key: str) -> str | None:
        """The event id already published for an input (a redelivered email), if any."""
        ...

    async def mark_processed(self, source_key: str, event_id: str) -> None: ...

    async def close(self) -> None: ...


def keyed_contact_hash(pepper: bytes, contact: str) -> str:
    """A contact as the stores keep it: a keyed hash that reveals no address."""
    return hashlib.sha256(pepper + contact.strip().casefold().encode()).hexdigest()
