"""Redriving a quarantined mail: read again from its raw copy by the IMAP channel's own code
(``ImapChannel.reread``), then moved from ``Quarantine`` to ``Processed`` on the server.

The mail is found in ``Quarantine`` by its Message-ID (every copy of it); without one, by its
size and then its bytes' SHA-256 (the raw copy's). The mailboxes tried are those of the
settings, the one the record names first. A mail not found there (moved by hand, or never
quarantined because a server error came first) is left as it is, and the redrive says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import aioimaplib
import structlog

from gateway.channels.imap import ImapChannel, MailboxPolicy
from gateway.channels.imap_session import (
    NETWORK_ERRORS,
    close_transport,
    command,
    message_set,
    move,
    open_session,
    search,
)
from gateway.channels.oauth2 import AccessTokens
from gateway.channels.raw import RawMessage
from gateway.errors import ChannelUnavailable
from gateway.intake import Intake
from gateway.settings import ImapAccount
from gateway.store.catalog import sha256_of_uri
from gateway.store.claims import ClaimStore, StoredObject
from gateway.store.dlq import DlqRecord
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

_SEARCHABLE = re.compile(r"<[!#-\[\]-~]{1,250}>")  # what IMAP SEARCH can quote as it is
_UID = re.compile(rb"UID (\d+)")
UNCONFIGURED = ImapAccount(host=None)  # no mailbox on this replica: read, nothing moved


class MailRereader:
    def __init__(
        self, accounts: list[ImapAccount], claims: ClaimStore, intake: Intake, state: StateStore
    ) -> None:
        self._accounts = accounts
        self._claims = claims
        self._intake = intake
        self._state = state

    async def messages(self, record: DlqRecord, reference: str | None) -> list[RawMessage]:
        del reference  # only documents sent through the web take a corrected reference
        raw_copy = await stored_object(self._claims, record)
        channel = ImapChannel(self._account_of(record), self._intake, self._claims, self._state)
        return [await channel.reread(raw_copy, record.received_at)]

    async def settle(self, record: DlqRecord, messages: list[RawMessage]) -> str:
        """Move the mail from ``Quarantine`` to ``Processed``; what was done."""
        raw_copy = await stored_object(self._claims, record)
        message_id = messages[0].source_id if messages else None
        for account in sorted(self._accounts, key=lambda a: a is not self._account_of(record)):
            moved = await move_to_processed(account, message_id, raw_copy)
            if moved:
                return f"mail moved from Quarantine to Processed ({account.user}@{account.host})"
        return "mail not found in a Quarantine folder: left where it is"

    async def close(self) -> None:
        """Nothing held between redrives."""

    def _account_of(self, record: DlqRecord) -> ImapAccount:
        """The mailbox the record came from (its event source names the folder)."""
        named = record.source.rsplit(":", 1)[-1]
        return next(
            (a for a in self._accounts if a.mailbox == named),
            self._accounts[0] if self._accounts else UNCONFIGURED,
        )


async def stored_object(claims: ClaimStore, record: DlqRecord) -> StoredObject:
    """The record's raw copy in this replica's store (by its SHA-256, whatever URI the record
    was made with); ``ClaimNotFound`` when the store has no such object."""
    sha256 = sha256_of_uri(record.source_uri)
    if sha256 is None:
        raise ChannelUnavailable(f"record {record.id} points to no stored raw copy")
    return StoredObject(sha256, await claims.size(sha256), claims.uri_of(sha256))


async def move_to_processed(
    account: ImapAccount, message_id: str | None, raw_copy: StoredObject
) -> int:
    """Move the mail from the account's ``Quarantine`` to its ``Processed``: how many copies
    moved. ChannelUnavailable when the server cannot be reached."""
    policy = MailboxPolicy()
    tokens = AccessTokens(account.oauth2) if account.oauth2 else None
    client = await open_session(account, tokens)
    try:
        await command(client.select(policy.quarantine))
        if message_id and _SEARCHABLE.fullmatch(message_id):
            uids = await search(client, f'HEADER Message-ID "{message_id}"')
        else:
            uids = await _same_bytes(client, raw_copy)
        if uids:
            await move(client, uids, policy.processed)
        log.info("dlq.mail_moved", mailbox=account.user, copies=len(uids))
        return len(uids)
    finally:
        await _logout(client)


async def _same_bytes(client: aioimaplib.IMAP4, raw_copy: StoredObject) -> list[int]:
    """The messages of the selected folder with the raw copy's size and bytes."""
    uids = await search(client, f"LARGER {raw_copy.size - 1} SMALLER {raw_copy.size + 1}")
    if not uids:
        return []
    response = await command(client.uid("fetch", message_set(uids), "(UID BODY.PEEK[])"))
    same, uid = [], None
    for line in response.lines:
        if isinstance(line, bytes) and b"FETCH" in line:
            found = _UID.search(line)
            uid = int(found.group(1)) if found else None
        elif isinstance(line, bytearray) and uid is not None:
            if hashlib.sha256(bytes(line)).hexdigest() == raw_copy.sha256:
                same.append(uid)
            uid = None
    return same


async def _logout(client: aioimaplib.IMAP4) -> None:
    try:
        await asyncio.wait_for(client.logout(), timeout=5)
    except NETWORK_ERRORS:
        log.info("dlq.logout_failed")
    finally:
        close_transport(client)
