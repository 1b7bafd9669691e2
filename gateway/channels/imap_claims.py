"""Several gateways on one mailbox: each message is claimed by one of them, on the IMAP server.

A claim is the keyword ``$IntakeClaimed``, set by a conditional STORE (CONDSTORE, RFC 7162)::

    UID STORE 41:60 (UNCHANGEDSINCE 1207) +FLAGS.SILENT ($IntakeClaimed)

The server stores it only on the messages nobody changed since this replica read their
modification sequences, and names the others (``[MODIFIED 44,51]``). Two replicas claiming the
same messages at once cannot both win one: the first store raises its modification sequence,
so the second is refused for it. (IMAP MOVE into a claim folder is not such a lock: Dovecot
copies then expunges, and two MOVEs of one message at once both succeed, with two copies.)

Each replica keeps the modification sequence of its claims: after a restart, a claimed
message whose sequence has not moved is still its own. A claim is given up with the same kind
of conditional STORE (``-FLAGS``), so two replicas giving up one stale claim at once cannot
both then take it as theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import aioimaplib

from gateway.channels.imap_session import command, message_set
from gateway.errors import ChannelUnavailable

CLAIMED = "$IntakeClaimed"

_UID = re.compile(rb"UID (\d+)")
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
_MODIFIED = re.compile(rb"\[MODIFIED ([\d:,]+)\]")


async def modification_sequences(
    client: aioimaplib.IMAP4, uids: list[int]
) -> dict[int, tuple[int, bool]]:
    """UID -> (modification sequence, whether claimed) of those of the messages still there."""
    response = await command(client.uid("fetch", message_set(uids), "(UID MODSEQ FLAGS)"))
    claimed = CLAIMED.encode()
    return {uid: (modseq, claimed in line) for uid, modseq, line in _with_modseq(response.lines)}


async def claim(client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
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


async def give_up(client: aioimaplib.IMAP4, uids: list[int]) -> list[int]:
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
