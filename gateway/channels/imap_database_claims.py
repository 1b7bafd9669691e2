"""Claims in the state database (``MailboxClaiming.DATABASE``): for replicas that share their
state (``GATEWAY_STATE_URL``).

Each batch of a round is claimed by one call of ``StateStore.claim_messages``: one atomic
``INSERT ... ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE ... WHERE`` the claim is this
replica's or older than ``stale_after_s`` (the database's clock) ``RETURNING uid``. Of two
replicas claiming one message at once, exactly one wins it; a replica that died loses its
claims to the next replica that asks once they are stale; one restarted with its name (kept in
its data folder) finds its claims again, renews them and finishes them first. The IMAP server
only has to list the mailbox and move messages out of it: no CONDSTORE, no keyword, nothing
trusted to how a server applies a conditional STORE.

A round claims every message of the mailbox it has not tried yet (the mailbox is the queue:
done messages are moved out), batch by batch; a message another replica holds is tried again
next round (new mail, or the next poll), when its claim may have gone stale.
"""

from __future__ import annotations

import aioimaplib

from gateway.channels.imap_claims import ClaimedMailbox
from gateway.channels.imap_session import message_set, search


class DatabaseClaims:
    """The claims of one mailbox, in the shared state store (a ``MailboxClaims``)."""

    def __init__(self, mailbox: ClaimedMailbox) -> None:
        self._mailbox = mailbox
        self._tried: set[int] = set()  # claimed this round, won or not

    def check(self, client: aioimaplib.IMAP4) -> None:
        """Any IMAP server will do."""

    async def held(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        self._tried = set()
        state, key = self._mailbox.state, self._mailbox.key
        recorded = await state.claimed_messages(key, uidvalidity)
        if not recorded:
            return []
        present = set(await search(client, f"UID {message_set(recorded)}"))
        gone = [uid for uid in recorded if uid not in present]
        if gone:  # moved out before their claims were released (a crash in between)
            await state.release_messages(key, uidvalidity, gone)
        # claimed again: renewed, unless another replica took one over as stale meanwhile
        return await self.claim(client, uidvalidity, [uid for uid in recorded if uid in present])

    async def waiting(self, client: aioimaplib.IMAP4) -> list[int]:
        return [uid for uid in await search(client, "ALL") if uid not in self._tried]

    async def claim(self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]) -> list[int]:
        del client  # the server plays no part
        self._tried.update(uids)
        mailbox = self._mailbox
        return await mailbox.state.claim_messages(
            mailbox.key, uidvalidity, uids, mailbox.stale_after_s
        )

    async def release(self, uidvalidity: int, uids: list[int]) -> None:
        await self._mailbox.state.release_messages(self._mailbox.key, uidvalidity, uids)
