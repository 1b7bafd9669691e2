"""Publishing a mailbox's messages, batch by batch: each message's event once, then the message
moved out of the mailbox.

- A message is moved to ``Processed`` only after Kafka acknowledged its event (then the caller
  is told: it advances its checkpoint, or releases its claims); one that cannot become a
  complaint goes to ``Quarantine`` with an ``intake.dlq.v1`` record; nothing is deleted. A
  crash in between republishes the same event id (deterministic from the Message-ID, or from
  the bytes without one); the processed-source record keeps a message already published from
  being published again.
- The next batch is fetched while this one is published; a batch is published concurrently,
  and what is done is moved in UID order up to the first failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

import aioimaplib
import structlog
from prometheus_client import Counter, Gauge

from gateway.channels.imap_fetch import Fetched, MessageFetcher
from gateway.channels.imap_message import MailReader, source_key_of
from gateway.channels.imap_policy import MailboxPolicy
from gateway.channels.imap_session import move
from gateway.channels.large_mail import OversizedPart
from gateway.channels.mail import ParsedMail
from gateway.channels.raw import RawMessage
from gateway.errors import RETRY_LATER, InputRejected
from gateway.events.common import Channel
from gateway.intake import Intake
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

SEEN = Counter("gateway_email_messages_seen_total", "Messages read from the mailbox", ["mailbox"])
PUBLISHED = Counter("gateway_email_messages_published_total", "Messages published", ["mailbox"])
QUARANTINED = Counter(
    "gateway_email_messages_quarantined_total", "Messages quarantined", ["mailbox"]
)
LAG = Gauge("gateway_email_lag_seconds", "Age of the oldest unprocessed message", ["mailbox"])

OnDone = Callable[[list[int]], Awaitable[None]]  # the UIDs of a batch done, in order


class MailImport:
    """The import of one mailbox's messages (``key`` names it in logs and metrics)."""

    def __init__(
        self,
        key: str,
        intake: Intake,
        state: StateStore,
        fetcher: MessageFetcher,
        reader: MailReader,
        policy: MailboxPolicy,
    ) -> None:
        self._key, self._intake, self._state = key, intake, state
        self._fetcher, self._reader, self._policy = fetcher, reader, policy
        self._published_elsewhere: Collection[str] = frozenset()

    async def run(
        self,
        client: aioimaplib.IMAP4,
        uids: list[int],
        on_done: OnDone,
        published_elsewhere: Collection[str] = frozenset(),
    ) -> int:
        """Publish the messages of the selected folder, batch by batch; ``on_done`` after each.
        ``published_elsewhere``: Message-IDs another replica published (moved, not published)."""
        self._published_elsewhere = published_elsewhere
        size = self._policy.batch
        batches = [uids[start : start + size] for start in range(0, len(uids), size)]
        handled = 0
        # The next batch is fetched while this one is published: the server and the network
        # work while the gateway parses and normalises (one connection: IMAP orders the
        # commands, the MOVE of this batch after that FETCH).
        following: asyncio.Task[list[Fetched]] | None = None
        try:
            for number, _ in enumerate(batches):
                batch = await (following or self._fetcher.batch(client, batches[number]))
                following = None
                if number + 1 < len(batches):
                    following = asyncio.create_task(
                        self._fetcher.batch(client, batches[number + 1])
                    )
                oldest = min((m.internal_date for m in batch if m.internal_date), default=None)
                if oldest is not None:
                    LAG.labels(self._key).set((datetime.now(UTC) - oldest).total_seconds())
                handled += await self._process_batch(client, batch, on_done)
        finally:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):  # discarded anyway
                    await following
        LAG.labels(self._key).set(0)
        return handled

    async def _process_batch(
        self, client: aioimaplib.IMAP4, batch: list[Fetched], on_done: OnDone
    ) -> int:
        """Publish a batch concurrently, then move the messages done and tell ``on_done``, in
        UID order, up to the first failure (which is raised: the rest waits for the next try)."""
        first_of: dict[str, asyncio.Future[str]] = {}  # the same message twice in one batch
        outcomes = await asyncio.gather(
            *(self._publish(client, message, first_of) for message in batch),
            return_exceptions=True,
        )
        done: dict[str, list[int]] = {self._policy.processed: [], self._policy.quarantine: []}
        failure: BaseException | None = None
        for message, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = outcome
                break
            done[outcome].append(message.uid)
        for folder, moved in done.items():
            if moved:
                await move(client, moved, folder)
        count = sum(map(len, done.values()))
        if count:
            await on_done([message.uid for message in batch[:count]])
        if failure is not None:
            raise failure
        return count

    async def _publish(
        self, client: aioimaplib.IMAP4, message: Fetched, first_of: dict[str, asyncio.Future[str]]
    ) -> str:
        """Publish one message's event (once); the folder it then belongs in."""
        SEEN.labels(self._key).inc()
        raw_copy = await self._reader.raw_copy(client, message)
        try:
            parsed, oversized = await self._reader.parse(message, raw_copy)
        except InputRejected as exc:
            source_key = f"email:sha256:{raw_copy.sha256}"
            return await self._quarantine(message, source_key, raw_copy.uri, exc)
        source_key = source_key_of(parsed, raw_copy)
        if source_key in first_of:
            return await asyncio.shield(first_of[source_key])
        first_of[source_key] = asyncio.ensure_future(
            self._publish_or_quarantine(message, parsed, source_key, raw_copy.uri, oversized)
        )
        return await asyncio.shield(first_of[source_key])

    async def _publish_or_quarantine(
        self,
        message: Fetched,
        parsed: ParsedMail,
        source_key: str,
        raw_uri: str,
        oversized: list[OversizedPart],
    ) -> str:
        try:
            return await self._publish_once(message, parsed, source_key, raw_uri, oversized)
        except RETRY_LATER:
            raise  # the source is fine: try again later
        except Exception as exc:
            log.exception("email.message_failed", mailbox=self._key, uid=message.uid)
            refusal = InputRejected("unreadable_message", f"the message could not be read: {exc!r}")
            return await self._quarantine(message, source_key, raw_uri, refusal)

    async def _quarantine(
        self, message: Fetched, source_key: str, raw_uri: str, refusal: InputRejected
    ) -> str:
        """Report the message on the DLQ (its raw copy is kept); it belongs in Quarantine."""
        unreadable = RawMessage(
            channel=Channel.EMAIL,
            source_key=source_key,
            source_id=source_key,
            received_at=message.internal_date or datetime.now(UTC),
            raw_uri=raw_uri,
        )
        await self._intake.reject(unreadable, refusal.reason_code, refusal.reason)
        QUARANTINED.labels(self._key).inc()
        return self._policy.quarantine

    async def _publish_once(
        self,
        message: Fetched,
        parsed: ParsedMail,
        source_key: str,
        raw_uri: str,
        oversized: list[OversizedPart],
    ) -> str:
        if await self._state.processed_event(source_key) is not None:
            return self._policy.processed  # published before a crash, or by another copy
        if parsed.message_id is not None and parsed.message_id in self._published_elsewhere:
            log.info("email.published_by_another_replica", mailbox=self._key, uid=message.uid)
            return self._policy.processed
        raw = await self._reader.raw_message(parsed, message, source_key, raw_uri, oversized)
        try:
            event = await self._intake.submit(raw)
        except InputRejected:
            QUARANTINED.labels(self._key).inc()
            return self._policy.quarantine
        await self._state.mark_processed(source_key, event.id)
        PUBLISHED.labels(self._key).inc()
        return self._policy.processed
