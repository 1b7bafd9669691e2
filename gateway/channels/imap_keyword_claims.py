"""Claims on the IMAP server (``MailboxClaiming.SERVER_KEYWORD``): for replicas whose state is
each their own (embedded SQLite), the mailbox being all they share.

A claim is the keyword ``$IntakeClaimed``, set by a conditional STORE (CONDSTORE, RFC 7162)::

    UID STORE 41:60 (UNCHANGEDSINCE 1207) +FLAGS.SILENT ($IntakeClaimed)

The server stores it only on the messages nobody changed since this replica read their
modification sequences, and names the others (``[MODIFIED 44,51]``). Two replicas claiming the
same messages at once cannot both win one: the first store raises its modification sequence,
so the second is refused for it. (IMAP MOVE into a claim folder is not such a lock: Dovecot
copies then expunges, and two MOVEs of one message at once both succeed, with two copies.)
This trusts the server: it must offer CONDSTORE, and apply UNCHANGEDSINCE atomically (a
server that reads the sequences and then stores, in two steps, can let both win). Replicas
that share a database claim there instead (``imap_database_claims``).

Each replica keeps the modification sequence of its claims: after a restart, a claimed
message whose sequence has not moved is still its own. A claim another replica has held for
``stale_after_s`` (as seen from here: the keyword carries no time) is given up with the same
kind of conditional STORE (``-FLAGS``), so two replicas giving up one stale claim at once
cannot both then take it as theirs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import aioimaplib
import structlog

from gateway.channels.imap_claims import ClaimedMailbox
from gateway.channels.imap_session import command, message_set, search
from gateway.errors import ChannelUnavailable

log = structlog.get_logger(__name__)

CLAIMED = "$IntakeClaimed"

_UID = re.compile(rb"UID (\d+)")
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
_MODIFIED = re.compile(rb"\[MODIFIED ([\d:,]+)\]")


class KeywordClaims:
    """The claims of one mailbox, as keywords on the server (a ``MailboxClaims``)."""

    def __init__(self, mailbox: ClaimedMailbox) -> None:
        self._mailbox = mailbox
        # Claims of other replicas: since when this one has seen them.
        self._unowned_since: dict[tuple[int, int], float] = {}

    def check(self, client: aioimaplib.IMAP4) -> None:
        if not client.has_capability("CONDSTORE"):
            raise ChannelUnavailable(
                f"{self._mailbox.key}: a shared mailbox needs IMAP CONDSTORE, which this server"
                " does not offer: share the replicas' state in PostgreSQL (GATEWAY_STATE_URL),"
                " where the messages are claimed instead, or run one gateway on this mailbox"
                " with GATEWAY_IMAP_SHARED=false"
            )

    async def held(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        own = await self._own_claims(client, uidvalidity)
        await self._give_up_stale(client, uidvalidity, mine=set(own))
        return own

    async def waiting(self, client: aioimaplib.IMAP4) -> list[int]:
        return await search(client, f"UNKEYWORD {CLAIMED}")

    async def claim(self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]) -> list[int]:
        async with self._mailbox.fetching:
            won = await conditional_claim(client, uids)
        await self._mailbox.state.add_claims(self._mailbox.key, uidvalidity, won)
        return sorted(won)

    async def release(self, uidvalidity: int, uids: list[int]) -> None:
        await self._mailbox.state.drop_claims(self._mailbox.key, uidvalidity, uids)

    async def _own_claims(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        """This replica's claims still in the mailbox and untouched since (so still its own);
        the others are forgotten."""
        state, key = self._mailbox.state, self._mailbox.key
        recorded = await state.claims(key, uidvalidity)
        if not recorded:
            return []
        async with self._mailbox.fetching:
            current = await modification_sequences(client, sorted(recorded))
        mine = [
            uid for uid, (modseq, claimed) in current.items() if claimed and modseq == recorded[uid]
        ]
        lost = sorted(set(recorded) - set(mine))
        if lost:
            await state.drop_claims(key, uidvalidity, lost)
        return sorted(mine)

    async def _give_up_stale(
        self, client: aioimaplib.IMAP4, uidvalidity: int, mine: set[int]
    ) -> None:
        """Give up the claims of others that stayed ``stale_after_s`` (as seen from here)."""
        claimed = await search(client, f"KEYWORD {CLAIMED}")
        now = time.monotonic()
        since = {
            (uidvalidity, uid): self._unowned_since.get((uidvalidity, uid), now)
            for uid in claimed
            if uid not in mine
        }
        self._unowned_since = since  # what left the mailbox is forgotten
        stale = [
            uid for (_, uid), seen in since.items() if now - seen >= self._mailbox.stale_after_s
        ]
        if not stale:
            return
        async with self._mailbox.fetching:
            given_up = await conditional_give_up(client, stale)
        log.warning(
            "email.stale_claims_given_up", mailbox=self._mailbox.key, messages=len(given_up)
        )
        for uid in given_up:
            del self._unowned_since[(uidvalidity, uid)]


async def modification_sequences(
    client: aioimaplib.IMAP4, uids: list[int]
) -> dict[int, tuple[int, bool]]:
    """UID -> (modification sequence, whether claimed) of those of the messages still there."""
    response = await command(client.uid("fetch", message_set(uids), "(UID MODSEQ FLAGS)"))
    claimed = CLAIMED.encode()
    return {uid: (modseq, claimed in line) for uid, modseq, line in _with_modseq(response.lines)}


async def conditional_claim(client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    """Claim the messages no one has: UID -> modification sequence of those this replica won."""
    current = await modification_sequences(client, uids)
    free = {uid: modseq for uid, (modseq, claimed) in current.items() if not claimed}
    if not free:
        return {}
    response = await _conditional_store(client, free, "+FLAGS.SILENT")
    if response is None:
        return {}
    won = stored_sequences(response.lines)
    refused = modified_uids(response.lines)
    return {uid: modseq for uid, modseq in won.items() if uid in free and uid not in refused}


async def conditional_give_up(client: aioimaplib.IMAP4, uids: list[int]) -> list[int]:
    """Take the claim off these messages, unless they changed meanwhile; those it came off."""
    current = await modification_sequences(client, uids)
    held = {uid: modseq for uid, (modseq, claimed) in current.items() if claimed}
    if not held:
        return []
    response = await _conditional_store(client, held, "-FLAGS.SILENT")
    if response is None:
        return []
    refused = modified_uids(response.lines)
    return sorted(uid for uid in held if uid not in refused)


async def _conditional_store(
    client: aioimaplib.IMAP4, sequences: dict[int, int], change: str
) -> aioimaplib.Response | None:
    """The STORE of ``change`` to the claim keyword, on the messages unchanged since
    ``sequences`` were read; None when the server refused it whole because some of them were
    expunged meanwhile (RFC 9051 EXPUNGEISSUED: another replica moved them; the next SEARCH
    sees what is left)."""
    # Every sequence read is at most the highest: a message changed since then has a higher one.
    since = max(sequences.values())
    try:
        return await command(
            client.uid(
                "store",
                message_set(sorted(sequences)),
                f"(UNCHANGEDSINCE {since})",
                change,
                f"({CLAIMED})",
            )
        )
    except ChannelUnavailable as exc:
        if "EXPUNGEISSUED" in str(exc):
            return None
        raise


def stored_sequences(lines: list[bytes | bytearray | str]) -> dict[int, int]:
    """UID -> new modification sequence, from the FETCH lines a conditional STORE answers."""
    return {uid: modseq for uid, modseq, _ in _with_modseq(lines)}


def _with_modseq(lines: list[bytes | bytearray | str]) -> Iterator[tuple[int, int, bytes]]:
    """(UID, modification sequence, the line) of each FETCH line that names both."""
    for line in lines:
        if isinstance(line, bytes) and b"FETCH" in line:
            uid, modseq = _UID.search(line), _MODSEQ.search(line)
            if uid and modseq:
                yield int(uid.group(1)), int(modseq.group(1)), line


def modified_uids(lines: list[bytes | bytearray | str]) -> set[int]:
    """The UIDs a conditional STORE refused (``[MODIFIED 1:3,7]``)."""
    refused: set[int] = set()
    for line in lines:
        if isinstance(line, bytes | bytearray) and (match := _MODIFIED.search(line)):
            refused.update(uid_set(match.group(1).decode()))
    return refused


def uid_set(text: str) -> list[int]:
    """``1:3,7`` -> [1, 2, 3, 7] (``3:1`` is the same range as ``1:3``)."""
    uids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        low, high = sorted((int(first), int(last or first)))
        uids.extend(range(low, high + 1))
    return uids
