"""Several gateways on one mailbox: how its messages are divided between them (``MailboxClaims``).

Two kinds, chosen once where the services are assembled (``gateway.runtime.email_service``),
never inside the channel:

- **database claims** (``MailboxClaiming.DATABASE``, ``imap_database_claims``) when the
  replicas share their state (``GATEWAY_STATE_URL``): each message is claimed by one atomic
  statement in that database (``StateStore.claim_messages``). Nothing is asked of the IMAP
  server beyond IMAP4rev1: no CONDSTORE, and no trust in how it applies a conditional STORE.
- **server keyword claims** (``MailboxClaiming.SERVER_KEYWORD``, ``imap_keyword_claims``)
  otherwise: each replica's state is its own (embedded SQLite), so the mailbox is all they
  share, and a keyword set by a conditional STORE (CONDSTORE) is the claim.

What every kind promises (``imap_shared`` relies on it): of two replicas claiming one message
at once, exactly one wins it; a replica restarted with its state finds its claims again
(``held``); a claim another replica has held for ``stale_after_s`` (it died) can be taken.
Every call comes with the mailbox selected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import aioimaplib

from gateway.store.state import StateStore


class MailboxClaiming(StrEnum):
    """Where the replicas sharing a mailbox claim its messages."""

    SERVER_KEYWORD = "server-keyword"  # on the IMAP server: a keyword, CONDSTORE
    DATABASE = "database"  # in the state every replica shares


@dataclass(frozen=True)
class ClaimedMailbox:
    """What a kind of claims knows of its mailbox."""

    key: str  # the mailbox, as the state store and the logs name it
    state: StateStore
    fetching: asyncio.Lock  # taken by any command the server answers with FETCH lines
    stale_after_s: float  # a claim another replica held this long is taken over


class MailboxClaims(Protocol):
    def check(self, client: aioimaplib.IMAP4) -> None:
        """``ChannelUnavailable`` when this server cannot carry these claims."""
        ...

    async def held(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        """Start of a round: this replica's claims from before (a restart) that are still its
        own and still in the mailbox, to publish first, in UID order; the others forgotten."""
        ...

    async def waiting(self, client: aioimaplib.IMAP4) -> list[int]:
        """The messages worth claiming now, in UID order (none: the round is over)."""
        ...

    async def claim(self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]) -> list[int]:
        """Those of these messages this replica won, in UID order."""
        ...

    async def release(self, uidvalidity: int, uids: list[int]) -> None:
        """These messages are done (moved out of the mailbox): their claims go."""
        ...
