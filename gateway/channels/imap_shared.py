"""Several gateways on one mailbox (``MailboxPolicy.shared``): each batch is claimed first
(``imap_claims``) and only the replica that won a message publishes it.

The mailbox itself is the queue (what is in it is not done: done messages are moved out), so
there is no checkpoint to pass over a message another change kept this replica from claiming.
First this replica's own claims from before a restart, then the claims of others left longer
than ``claim_timeout_s`` (a replica gone for good) are given up, for anyone to take. Before
publishing, the Message-IDs this replica has not published itself are looked for in
``Processed`` (received in the last ``ELSEWHERE_DAYS``): a second copy of a mail another
replica published is moved there without a second event.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import aioimaplib
import structlog

from gateway.channels.imap_claims import CLAIMED, claim, give_up, modification_sequences
from gateway.channels.imap_fetch import MessageFetcher
from gateway.channels.imap_import import MailImport
from gateway.channels.imap_policy import MailboxPolicy
from gateway.channels.imap_session import command, search, select
from gateway.channels.mail import message_id_of
from gateway.errors import ChannelUnavailable
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

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
    ) -> None:
        self._key, self._mailbox, self._state = key, mailbox, state
        self._fetcher, self._import, self._policy = fetcher, importer, policy
        # Claims of other replicas: since when this one has seen them.
        self._unowned_since: dict[tuple[int, int], float] = {}

    async def process(self, client: aioimaplib.IMAP4, uidvalidity: int) -> int:
        """Claim and publish every message waiting now (the mailbox selected); how many."""
        if not client.has_capability("CONDSTORE"):
            raise ChannelUnavailable(
                f"{self._key}: a shared mailbox needs IMAP CONDSTORE, which this server does not"
                " offer: run one gateway on this mailbox, with GATEWAY_IMAP_SHARED=false"
            )
        own = await self._own_claims(client, uidvalidity)
        handled = await self._publish_claims(client, uidvalidity, own)
        await self._give_up_stale(client, uidvalidity, mine=set(own))
        while True:
            waiting = await search(client, f"UNKEYWORD {CLAIMED}")
            if not waiting:
                return handled  # the mailbox stays selected, for IDLE
            async with self._fetcher.fetching:
                won = await claim(client, waiting[: self._policy.batch])
            await self._state.add_claims(self._key, uidvalidity, won)
            handled += await self._publish_claims(client, uidvalidity, sorted(won))

    async def _own_claims(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        """This replica's claims still in the mailbox and untouched since (so still its own);
        the others are forgotten."""
        recorded = await self._state.claims(self._key, uidvalidity)
        if not recorded:
            return []
        async with self._fetcher.fetching:
            current = await modification_sequences(client, sorted(recorded))
        mine = [
            uid for uid, (modseq, claimed) in current.items() if claimed and modseq == recorded[uid]
        ]
        lost = sorted(set(recorded) - set(mine))
        if lost:
            await self._state.drop_claims(self._key, uidvalidity, lost)
        return sorted(mine)

    async def _publish_claims(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]
    ) -> int:
        """Publish claimed messages (not a copy another replica already published)."""
        if not uids:
            return 0
        unknown = await self._unknown_message_ids(client, uids)
        published_elsewhere: set[str] = set()
        if unknown:
            published_elsewhere = await self._in_processed(client, unknown)
            if await select(client, self._mailbox, self._key) != uidvalidity:
                raise ChannelUnavailable(f"{self._key} was recreated meanwhile")

        async def release(done: list[int]) -> None:
            await self._state.drop_claims(self._key, uidvalidity, done)

        return await self._import.run(client, uids, release, published_elsewhere)

    async def _give_up_stale(
        self, client: aioimaplib.IMAP4, uidvalidity: int, mine: set[int]
    ) -> None:
        """Give up the claims of others that stayed ``claim_timeout_s`` (as seen from here)."""
        claimed = await search(client, f"KEYWORD {CLAIMED}")
        now = time.monotonic()
        since = {
            (uidvalidity, uid): self._unowned_since.get((uidvalidity, uid), now)
            for uid in claimed
            if uid not in mine
        }
        self._unowned_since = since  # what left the mailbox is forgotten
        stale = [
            uid for (_, uid), seen in since.items() if now - seen >= self._policy.claim_timeout_s
        ]
        if not stale:
            return
        async with self._fetcher.fetching:
            given_up = await give_up(client, stale)
        log.warning("email.stale_claims_given_up", mailbox=self._key, messages=len(given_up))
        for uid in given_up:
            del self._unowned_since[(uidvalidity, uid)]

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
