"""Several gateways on one mailbox (``MailboxPolicy.shared``): each batch is claimed first
and only the replica that won a message publishes it.

The claims are a ``MailboxClaims`` (``imap_claims``): in the state database the replicas
share (``imap_database_claims``), or, when each has its own, on the IMAP server
(``imap_keyword_claims``); ``MAILBOX_CLAIMS`` maps each ``MailboxClaiming`` to its kind.

The mailbox itself is the queue (what is in it is not done: done messages are moved out), so
there is no checkpoint to pass over a message another change kept this replica from claiming.
Each round publishes this replica's own claims from before a restart first; claims of others
held longer than ``claim_timeout_s`` (a replica gone for good) are taken over. Before
publishing, the Message-IDs this replica has not published itself are looked for in
``Processed`` (received in the last ``ELSEWHERE_DAYS``): a second copy of a mail another
replica published is moved there without a second event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aioimaplib

from gateway.channels.imap_claims import ClaimedMailbox, MailboxClaiming, MailboxClaims
from gateway.channels.imap_database_claims import DatabaseClaims
from gateway.channels.imap_fetch import MessageFetcher
from gateway.channels.imap_import import MailImport
from gateway.channels.imap_keyword_claims import KeywordClaims
from gateway.channels.imap_policy import MailboxPolicy
from gateway.channels.imap_session import command, search, select
from gateway.channels.mail import message_id_of
from gateway.errors import ChannelUnavailable
from gateway.store.state import StateStore

MAILBOX_CLAIMS: dict[MailboxClaiming, Callable[[ClaimedMailbox], MailboxClaims]] = {
    MailboxClaiming.SERVER_KEYWORD: KeywordClaims,
    MailboxClaiming.DATABASE: DatabaseClaims,
}
ELSEWHERE_DAYS = 30  # a copy published by another replica is looked for this far back
# what an IMAP quoted string carries as is: printable ASCII but for the quote and the backslash
_SEARCHABLE = re.compile(r"<[!#-\[\]-~]{1,250}>")
_MESSAGE_ID = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class SharedMailbox:
    """One mailbox several replicas read (``key`` names it; ``mailbox`` is its folder)."""

    def __init__(
        self,
        key: str,
        mailbox: str,
        state: StateStore,
        fetcher: MessageFetcher,
        importer: MailImport,
        policy: MailboxPolicy,
        claims: MailboxClaims,
    ) -> None:
        self._key, self._mailbox, self._state = key, mailbox, state
        self._fetcher, self._import, self._policy = fetcher, importer, policy
        self._claims = claims

    async def process(self, client: aioimaplib.IMAP4, uidvalidity: int) -> int:
        """Claim and publish every message waiting now (the mailbox selected); how many."""
        self._claims.check(client)
        own = await self._claims.held(client, uidvalidity)
        handled = await self._publish_claims(client, uidvalidity, own)
        while True:
            waiting = await self._claims.waiting(client)
            if not waiting:
                return handled  # the mailbox stays selected, for IDLE
            won = await self._claims.claim(client, uidvalidity, waiting[: self._policy.batch])
            handled += await self._publish_claims(client, uidvalidity, won)

    async def _publish_claims(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]
    ) -> int:
        """Publish claimed messages (not a copy another replica already published); then
        release the claims of those that had left the mailbox meanwhile (another replica
        published and moved one between this replica's SEARCH and its claim)."""
        if not uids:
            return 0
        unknown = await self._unknown_message_ids(client, uids)
        published_elsewhere: set[str] = set()
        if unknown:
            published_elsewhere = await self._in_processed(client, unknown)
            if await select(client, self._mailbox, self._key) != uidvalidity:
                raise ChannelUnavailable(f"{self._key} was recreated meanwhile")
        released: set[int] = set()

        async def release(done: list[int]) -> None:
            await self._claims.release(uidvalidity, done)
            released.update(done)

        handled = await self._import.run(client, uids, release, published_elsewhere)
        gone = [uid for uid in uids if uid not in released]  # not fetched: no longer there
        if gone:
            await self._claims.release(uidvalidity, gone)
        return handled

    async def _unknown_message_ids(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[str]:
        """The Message-IDs of these messages (of the selected folder) this replica has not
        published: another replica may have, from another copy of the message."""
        heads = await self._fetcher.parts(client, uids, _MESSAGE_ID)
        unknown = []
        for message_id in {message_id_of(head) for head in heads.values()}:
            if (
                message_id
                and _SEARCHABLE.fullmatch(message_id)
                and await self._state.processed_event(f"email:{message_id}") is None
            ):
                unknown.append(message_id)
        return unknown

    async def _in_processed(self, client: aioimaplib.IMAP4, message_ids: list[str]) -> set[str]:
        """Those of the Message-IDs that a message in ``Processed`` received in the last
        ``ELSEWHERE_DAYS`` has (published by another replica); leaves ``Processed`` selected."""
        await command(client.examine(self._policy.processed))
        since = imap_date(datetime.now(UTC) - timedelta(days=ELSEWHERE_DAYS))
        either = "OR " * (len(message_ids) - 1)
        wanted = " ".join(f'HEADER Message-ID "{message_id}"' for message_id in message_ids)
        hits = await search(client, f"SINCE {since} {either}{wanted}")
        if not hits:
            return set()
        found = await self._fetcher.parts(client, hits, _MESSAGE_ID)
        return {message_id_of(head) or "" for head in found.values()} & set(message_ids)


def imap_date(moment: datetime) -> str:
    """``1-Dec-2026``, as SEARCH SINCE wants it (English months, whatever the locale)."""
    return f"{moment.day}-{_MONTHS[moment.month - 1]}-{moment.year}"
