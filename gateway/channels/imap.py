"""The complaints mailbox over IMAP (aioimaplib): every message becomes an event, once.

This module is the session loop; the work is split by responsibility:

- ``imap_session``: opening a session (TLS or STARTTLS, LOGIN or XOAUTH2) and the commands;
- ``imap_fetch``: the FETCHes of a batch, of some header fields, of a large mail's pieces;
- ``imap_message``: one mail's raw copy, its text read (a large mail without its oversized
  parts), its ``RawMessage``;
- ``imap_import``: a batch published (or quarantined), then moved out of the mailbox;
- ``imap_shared``: several gateways on one mailbox, each message claimed by one of them: in
  the state database the replicas share (``imap_database_claims``) or on the IMAP server
  (``imap_keyword_claims``), as ``claiming`` says (``gateway.runtime`` chooses).

- Resumes exactly where it stopped: a checkpoint of UIDVALIDITY + last UID done, in the state
  store; a new UIDVALIDITY (mailbox recreated) starts over, and the processed-source record
  keeps a message already published from being published again.
- IMAP IDLE when the server offers it, polling otherwise; any network error or server restart
  ends the session and a new one starts after a backoff with jitter.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

import aioimaplib
import structlog

from gateway.channels.imap_claims import ClaimedMailbox, MailboxClaiming
from gateway.channels.imap_fetch import MessageFetcher
from gateway.channels.imap_import import MailImport
from gateway.channels.imap_message import MailReader
from gateway.channels.imap_policy import MailboxPolicy
from gateway.channels.imap_session import (
    NETWORK_ERRORS,
    close_transport,
    open_session,
    search,
    select,
    take_mail_arrived,
)
from gateway.channels.imap_shared import MAILBOX_CLAIMS, SharedMailbox
from gateway.channels.oauth2 import AccessTokens
from gateway.channels.raw import RawMessage
from gateway.errors import RETRY_LATER, ChannelUnavailable
from gateway.intake import Intake
from gateway.settings import ImapAccount
from gateway.store.claims import ClaimStore, StoredObject
from gateway.store.state import StateStore

__all__ = ["EmailService", "ImapChannel", "MailboxPolicy"]

log = structlog.get_logger(__name__)


class ImapChannel:
    """One mailbox. ``run`` returns only when cancelled; a failing server never stops it."""

    name = "email"

    def __init__(
        self,
        account: ImapAccount,
        intake: Intake,
        claims: ClaimStore,
        state: StateStore,
        policy: MailboxPolicy | None = None,
        claiming: MailboxClaiming = MailboxClaiming.SERVER_KEYWORD,
    ) -> None:
        """``claiming``: where a shared mailbox's messages are claimed (``imap_claims``)."""
        self._account, self._state = account, state
        self.claiming = claiming
        self._policy = policy or MailboxPolicy(
            max_attachment_bytes=account.max_attachment_bytes,
            shared=account.shared,
            claim_timeout_s=account.claim_timeout_s,
        )
        self._key = f"{account.user}@{account.host}:{account.port}/{account.mailbox}"
        self._tokens = AccessTokens(account.oauth2) if account.oauth2 else None
        fetcher = MessageFetcher(self._policy.max_attachment_bytes)
        self._reader = MailReader(self._key, account.mailbox, claims, fetcher, self._policy)
        self._import = MailImport(self._key, intake, state, fetcher, self._reader, self._policy)
        claimed = ClaimedMailbox(self._key, state, fetcher.fetching, self._policy.claim_timeout_s)
        self._shared = SharedMailbox(
            self._key,
            account.mailbox,
            state,
            fetcher,
            self._import,
            self._policy,
            MAILBOX_CLAIMS[claiming](claimed),
        )

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
            except RETRY_LATER as exc:
                failures += 1
                delay = backoff(failures, self._policy.max_backoff_s)
                log.warning(
                    "email.session_ended", mailbox=self._key, error=str(exc), retry_in=delay
                )
                await asyncio.sleep(delay)
            except Exception:
                failures += 1
                delay = backoff(failures, self._policy.max_backoff_s)
                log.exception("email.session_failed", mailbox=self._key, retry_in=delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def drain(self) -> int:
        """Process every message waiting now, then return how many were handled (tests, tools)."""
        client = await self._connect()
        try:
            return await self._process_waiting(client)
        finally:
            await _logout(client)

    async def reread(self, raw_copy: StoredObject, received_at: datetime) -> RawMessage:
        """A mail's ``RawMessage`` from its stored raw copy, made as when the mail came (a DLQ
        redrive); ``InputRejected`` if it still cannot be read."""
        return await self._reader.reread(raw_copy, received_at)

    async def _session(self) -> None:
        client = await self._connect()
        try:
            while True:
                await self._process_waiting(client)
                await self._wait_for_mail(client)
        finally:
            await _logout(client)

    async def _connect(self) -> aioimaplib.IMAP4:
        return await open_session(self._account, self._tokens)

    async def _process_waiting(self, client: aioimaplib.IMAP4) -> int:
        uidvalidity = await select(client, self._account.mailbox, self._key)
        take_mail_arrived(client)  # the SELECT's own EXISTS: what follows is seen by the SEARCH
        if self._policy.shared:
            return await self._shared.process(client, uidvalidity)
        uids = await self._uids_after(client, await self._last_uid(uidvalidity))

        async def checkpoint(done: list[int]) -> None:
            await self._state.save_checkpoint(self._key, uidvalidity, done[-1])

        return await self._import.run(client, uids, checkpoint)

    async def _last_uid(self, uidvalidity: int) -> int:
        checkpoint = await self._state.checkpoint(self._key)
        return checkpoint[1] if checkpoint and checkpoint[0] == uidvalidity else 0

    async def _uids_after(self, client: aioimaplib.IMAP4, last_uid: int) -> list[int]:
        # "n:*" names the last message even when its UID is below n: filtered out
        return [uid for uid in await search(client, f"UID {last_uid + 1}:*") if uid > last_uid]

    async def _wait_for_mail(self, client: aioimaplib.IMAP4) -> None:
        if take_mail_arrived(client):  # delivered while the last batch was published
            return
        if not client.has_capability("IDLE"):
            await asyncio.sleep(self._policy.poll_interval_s)
            return
        try:
            idle = await client.idle_start(timeout=self._policy.idle_s)
            if not take_mail_arrived(client):  # none came while IDLE was starting
                await client.wait_server_push(timeout=self._policy.idle_s)
            client.idle_done()
            await asyncio.wait_for(idle, timeout=30)
        except (TimeoutError, aioimaplib.CommandTimeout):
            if client.has_pending_idle():
                client.idle_done()
        except (OSError, aioimaplib.Abort) as exc:
            raise ChannelUnavailable(f"IMAP IDLE on {self._key}: {exc}") from exc


async def _logout(client: aioimaplib.IMAP4) -> None:
    try:
        await asyncio.wait_for(client.logout(), timeout=5)
    except NETWORK_ERRORS:
        log.info("email.logout_failed")
    finally:
        close_transport(client)


def backoff(failures: int, ceiling: float) -> float:
    """Exponential backoff with jitter: 1-2 s, 2-4 s ... up to ``ceiling``."""
    return min(ceiling, 2.0 ** min(failures, 6)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)


class EmailService:
    """Every configured mailbox, each in its own loop: one failing (bad password, server down)
    never stops the others, nor the other services."""

    name = "email"

    def __init__(self, channels: list[ImapChannel]) -> None:
        self._channels = channels

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for channel in self._channels:
                group.create_task(channel.run())
