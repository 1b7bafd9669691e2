"""FETCHes of a mailbox's messages: a batch (whole, or only the size of a mail larger than the
attachment limit), some parts of each (header fields), and a large mail piece by piece.

One FETCH in flight at a time (``MessageFetcher.fetching``): aioimaplib hands the untagged
FETCH responses to the last FETCH sent, so two sent at once (the next batch's, a large mail's
pieces) would mix their answers. Every other command the server answers with FETCH lines (a
conditional STORE) takes the same lock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import aioimaplib

from gateway.channels.imap_session import command, message_set

PIECE_BYTES = 1024 * 1024  # a large mail is fetched this much at a time

_FETCH_HEAD = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class Fetched:
    uid: int
    internal_date: datetime | None
    raw: bytes  # empty for a large mail: fetched piece by piece when its turn comes
    size: int = 0
    large: bool = False


class MessageFetcher:
    """The FETCHes of one mailbox; a mail over ``max_whole_bytes`` is never fetched whole."""

    def __init__(self, max_whole_bytes: int) -> None:
        self.fetching = asyncio.Lock()
        self._max_whole_bytes = max_whole_bytes

    async def batch(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[Fetched]:
        """The batch's messages: whole, or, for one larger than the attachment limit, its size
        only (its bytes come piece by piece when it is published)."""
        async with self.fetching:
            sizes = await command(
                client.uid("fetch", message_set(uids), "(UID INTERNALDATE RFC822.SIZE)")
            )
        large, small = [], []
        for line in sizes.lines:
            if not isinstance(line, bytes):
                continue
            uid, size = _FETCH_HEAD.search(line), _SIZE.search(line)
            if uid is None or size is None:
                continue
            if int(size.group(1)) <= self._max_whole_bytes:
                small.append(int(uid.group(1)))
                continue
            large.append(
                Fetched(
                    uid=int(uid.group(1)),
                    internal_date=internal_date(line),
                    raw=b"",
                    size=int(size.group(1)),
                    large=True,
                )
            )
        whole = await self._whole(client, small) if small else []
        return sorted([*whole, *large], key=lambda message: message.uid)

    async def parts(self, client: aioimaplib.IMAP4, uids: list[int], part: str) -> dict[int, bytes]:
        """UID -> that part of each message (e.g. some header fields)."""
        fetched = await self._literals(client, uids, f"(UID {part})")
        return {uid: body for uid, (_, body) in fetched.items()}

    async def pieces(self, client: aioimaplib.IMAP4, uid: int) -> AsyncIterator[bytes]:
        """The message's bytes, ``PIECE_BYTES`` at a time (partial FETCH, RFC 3501 6.4.5)."""
        offset = 0
        while True:
            async with self.fetching:
                response = await command(
                    client.uid("fetch", str(uid), f"(BODY.PEEK[]<{offset}.{PIECE_BYTES}>)")
                )
            piece = next(
                (bytes(line) for line in response.lines if isinstance(line, bytearray)), b""
            )
            if piece:
                yield piece
            if len(piece) < PIECE_BYTES:
                return
            offset += len(piece)

    async def _whole(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[Fetched]:
        fetched = await self._literals(client, uids, "(UID INTERNALDATE BODY.PEEK[])")
        return sorted(
            (Fetched(uid, internal_date(head), body) for uid, (head, body) in fetched.items()),
            key=lambda message: message.uid,
        )

    async def _literals(
        self, client: aioimaplib.IMAP4, uids: list[int], items: str
    ) -> dict[int, tuple[bytes, bytes]]:
        """UID -> (the FETCH line, the literal that follows it) of each message."""
        async with self.fetching:
            response = await command(client.uid("fetch", message_set(uids), items))
        fetched, head = {}, None
        for line in response.lines:
            if isinstance(line, bytearray) and head is not None:
                uid = _FETCH_HEAD.search(head)
                if uid:
                    fetched[int(uid.group(1))] = (head, bytes(line))
                head = None
            elif isinstance(line, bytes) and b"FETCH" in line:
                head = line
        return fetched


def internal_date(head: bytes) -> datetime | None:
    match = _INTERNALDATE.search(head)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1).decode(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
