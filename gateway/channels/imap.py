"""The complaints mailbox over IMAP (aioimaplib): every message becomes an event, once.

- Resumes exactly where it stopped: a checkpoint of UIDVALIDITY + last UID done, in the state
  store; a new UIDVALIDITY (mailbox recreated) starts over, and the processed-source record
  keeps a message already published from being published again.
- A message is moved to ``Processed`` only after Kafka acknowledged its event (then the
  checkpoint advances); one that cannot become a complaint goes to ``Quarantine`` with an
  ``intake.dlq.v1`` record; nothing is deleted. A crash in between republishes the same event
  id (deterministic from the Message-ID, or from the bytes without one).
- IMAP IDLE when the server offers it, polling otherwise; any network error or server restart
  ends the session and a new one starts after a backoff with jitter. TLS or STARTTLS, LOGIN or
  XOAUTH2: ``imap_session``.
- Mail older than ``backlog_after`` when imported is flagged ``backlog`` (the notifier's rule
  for late acknowledgements applies to it).
- A mail larger than the attachment limit is never held whole: its raw copy is streamed from
  the server into the claim store (partial FETCHes), and it is read back from there with its
  oversized parts left out (``large_mail``): each is in the event as rejected, with its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aioimaplib
import structlog
from prometheus_client import Counter, Gauge

from gateway.channels.imap_claims import CLAIMED, claim, give_up, modification_sequences
from gateway.channels.imap_session import (
    NETWORK_ERRORS,
    close_transport,
    command,
    message_set,
    open_session,
    search,
    take_mail_arrived,
)
from gateway.channels.large_mail import OversizedPart, reduce_large_mail
from gateway.channels.mail import MailPart, ParsedMail, message_id_of, parse_mail
from gateway.channels.oauth2 import AccessTokens
from gateway.channels.raw import RawMessage, Sender, safe_filename
from gateway.errors import RETRY_LATER, ChannelUnavailable, InputRejected
from gateway.events.common import Attachment, AttachmentStatus, Channel
from gateway.events.complaint import Flag
from gateway.intake import Intake
from gateway.settings import ImapAccount
from gateway.store.claims import ClaimStore, StoredObject
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

SEEN = Counter("gateway_email_messages_seen_total", "Messages read from the mailbox", ["mailbox"])
PUBLISHED = Counter("gateway_email_messages_published_total", "Messages published", ["mailbox"])
QUARANTINED = Counter(
    "gateway_email_messages_quarantined_total", "Messages quarantined", ["mailbox"]
)
LAG = Gauge("gateway_email_lag_seconds", "Age of the oldest unprocessed message", ["mailbox"])

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_HEAD = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
# what an IMAP quoted string carries as is: printable ASCII but for the quote and the backslash
_SEARCHABLE = re.compile(r"<[!#-\[\]-~]{1,250}>")
_MESSAGE_ID = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ELSEWHERE_DAYS = 30  # a copy published by another replica is looked for this far back
PIECE_BYTES = 1024 * 1024  # a large mail is fetched this much at a time


@dataclass(frozen=True)
class Fetched:
    uid: int
    internal_date: datetime | None
    raw: bytes  # empty for a large mail: fetched piece by piece when its turn comes
    size: int = 0
    large: bool = False


MAX_BODY_CHARS = 100_000  # the web form's limit for a complaint's text
MAX_HTML_CHARS = 400_000  # markup takes room: about as much text once converted


@dataclass(frozen=True)
class MailboxPolicy:
    processed: str = "Processed"
    quarantine: str = "Quarantine"
    batch: int = 100
    poll_interval_s: float = 30.0
    idle_s: float = 290.0  # under the 29 minutes of RFC 2177, and NAT timeouts
    backlog_after: timedelta = timedelta(days=2)
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_backoff_s: float = 60.0
    shared: bool = False  # several gateways on this mailbox: see ``_process_shared``
    claim_timeout_s: float = 900.0


OnDone = Callable[[list[int]], Awaitable[None]]  # the UIDs of a batch done, in order


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
    ) -> None:
        self._account, self._intake, self._claims, self._state = account, intake, claims, state
        self._policy = policy or MailboxPolicy(
            max_attachment_bytes=account.max_attachment_bytes,
            shared=account.shared,
            claim_timeout_s=account.claim_timeout_s,
        )
        self._key = f"{account.user}@{account.host}:{account.port}/{account.mailbox}"
        self._tokens = AccessTokens(account.oauth2) if account.oauth2 else None
        # One FETCH in flight at a time: aioimaplib hands the untagged FETCH responses to the
        # last FETCH sent, so two sent at once (the next batch's, a large mail's pieces) would
        # mix their answers.
        self._fetching = asyncio.Lock()
        # Claims of other replicas in a shared mailbox: since when this one has seen them.
        self._unowned_since: dict[tuple[int, int], float] = {}
        self._published_elsewhere: set[str] = set()  # Message-IDs another replica published

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
        uidvalidity = await self._select(client, self._account.mailbox)
        take_mail_arrived(client)  # the SELECT's own EXISTS: what follows is seen by the SEARCH
        if self._policy.shared:
            return await self._process_shared(client, uidvalidity)
        uids = await self._uids_after(client, await self._last_uid(uidvalidity))

        async def checkpoint(done: list[int]) -> None:
            await self._state.save_checkpoint(self._key, uidvalidity, done[-1])

        return await self._process_uids(client, uids, checkpoint)

    async def _last_uid(self, uidvalidity: int) -> int:
        checkpoint = await self._state.checkpoint(self._key)
        return checkpoint[1] if checkpoint and checkpoint[0] == uidvalidity else 0

    async def _process_shared(self, client: aioimaplib.IMAP4, uidvalidity: int) -> int:
        """Several gateways on this mailbox: each batch is claimed first (``imap_claims``) and
        only the replica that won a message publishes it. The mailbox itself is the queue (what
        is in it is not done: done messages are moved out), so there is no checkpoint to pass
        over a message another change kept this replica from claiming. First this replica's
        own claims from before a restart, then the claims of others left longer than
        ``claim_timeout_s`` (a replica gone for good) are given up, for anyone to take."""
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
            async with self._fetching:
                won = await claim(client, waiting[: self._policy.batch])
            await self._state.add_claims(self._key, uidvalidity, won)
            handled += await self._publish_claims(client, uidvalidity, sorted(won))

    async def _own_claims(self, client: aioimaplib.IMAP4, uidvalidity: int) -> list[int]:
        """This replica's claims still in the mailbox and untouched since (so still its own);
        the others are forgotten."""
        recorded = await self._state.claims(self._key, uidvalidity)
        if not recorded:
            return []
        async with self._fetching:
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
        self._published_elsewhere = set()
        if unknown:
            self._published_elsewhere = await self._in_processed(client, unknown)
            if await self._select(client, self._account.mailbox) != uidvalidity:
                raise ChannelUnavailable(f"{self._key} was recreated meanwhile")

        async def release(done: list[int]) -> None:
            await self._state.drop_claims(self._key, uidvalidity, done)

        return await self._process_uids(client, uids, release)

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
        async with self._fetching:
            given_up = await give_up(client, stale)
        log.warning("email.stale_claims_given_up", mailbox=self._key, messages=len(given_up))
        for uid in given_up:
            del self._unowned_since[(uidvalidity, uid)]

    async def _unknown_message_ids(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[str]:
        """The Message-IDs of these messages (of the selected folder) this replica has not
        published: another replica may have, from another copy of the message."""
        heads = await self._fetch_parts(client, uids, _MESSAGE_ID)
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
        found = await self._fetch_parts(client, hits, _MESSAGE_ID)
        return {message_id_of(head) or "" for head in found.values()} & set(message_ids)

    async def _process_uids(
        self, client: aioimaplib.IMAP4, uids: list[int], on_done: OnDone
    ) -> int:
        """Publish the messages of the selected folder, batch by batch; ``on_done`` after each."""
        size = self._policy.batch
        batches = [uids[start : start + size] for start in range(0, len(uids), size)]
        handled = 0
        # The next batch is fetched while this one is published: the server and the network
        # work while the gateway parses and normalises (one connection: IMAP orders the
        # commands, the MOVE of this batch after that FETCH).
        following: asyncio.Task[list[Fetched]] | None = None
        try:
            for number, _ in enumerate(batches):
                batch = await (following or self._fetch(client, batches[number]))
                following = None
                if number + 1 < len(batches):
                    following = asyncio.create_task(self._fetch(client, batches[number + 1]))
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
                await self._move(client, moved, folder)
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
        if message.large:
            raw_copy = await self._stream_raw_copy(client, message)
        else:
            raw_copy = await self._claims.put(message.raw)
        oversized: list[OversizedPart] = []
        try:
            if message.large:
                parsed, oversized = await self._read_large(raw_copy)
            else:
                parsed = parse_mail(message.raw)
        except InputRejected as exc:
            source_key = f"email:sha256:{raw_copy.sha256}"
            return await self._quarantine(message, source_key, raw_copy.uri, exc)
        source_key = f"email:{parsed.message_id or 'sha256:' + raw_copy.sha256}"
        if source_key in first_of:
            return await asyncio.shield(first_of[source_key])
        first_of[source_key] = asyncio.ensure_future(
            self._publish_or_quarantine(message, parsed, source_key, raw_copy.uri, oversized)
        )
        return await asyncio.shield(first_of[source_key])

    async def reread(self, raw_copy: StoredObject, received_at: datetime) -> RawMessage:
        """A mail's ``RawMessage`` from its stored raw copy, made as when the mail came (a DLQ
        redrive); ``InputRejected`` if it still cannot be read."""
        oversized: list[OversizedPart] = []
        if raw_copy.size > self._policy.max_attachment_bytes:
            parsed, oversized = await self._read_large(raw_copy)
        else:
            parsed = parse_mail(await self._claims.get(raw_copy.sha256))
        source_key = f"email:{parsed.message_id or 'sha256:' + raw_copy.sha256}"
        message = Fetched(0, received_at, b"", raw_copy.size)
        return await self._raw_message(parsed, message, source_key, raw_copy.uri, oversized)

    async def _stream_raw_copy(self, client: aioimaplib.IMAP4, message: Fetched) -> StoredObject:
        """A large mail's raw copy, stored as it comes from the server."""
        raw_copy = await self._claims.put_stream(self._pieces(client, message.uid))
        if raw_copy.size == 0:
            raise ChannelUnavailable(f"message {message.uid} of {self._key} came back empty")
        if raw_copy.size != message.size:  # kept as it came; the server's count may differ
            log.warning(
                "email.size_differs",
                mailbox=self._key,
                uid=message.uid,
                told=message.size,
                read=raw_copy.size,
            )
        return raw_copy

    async def _read_large(self, raw_copy: StoredObject) -> tuple[ParsedMail, list[OversizedPart]]:
        """A large mail read back from its stored copy (a local file of it) without its
        oversized parts; reading and parsing run in a thread."""
        async with self._claims.spool(raw_copy.sha256) as stored:
            limit = self._policy.max_attachment_bytes
            reduced = await asyncio.to_thread(reduce_large_mail, stored, limit)
        return await asyncio.to_thread(parse_mail, reduced.raw), reduced.oversized

    async def _pieces(self, client: aioimaplib.IMAP4, uid: int) -> AsyncIterator[bytes]:
        """The message's bytes, ``PIECE_BYTES`` at a time (partial FETCH, RFC 3501 6.4.5)."""
        offset = 0
        while True:
            async with self._fetching:
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
        raw = await self._raw_message(parsed, message, source_key, raw_uri, oversized)
        try:
            event = await self._intake.submit(raw)
        except InputRejected:
            QUARANTINED.labels(self._key).inc()
            return self._policy.quarantine
        await self._state.mark_processed(source_key, event.id)
        PUBLISHED.labels(self._key).inc()
        return self._policy.processed

    async def _select(self, client: aioimaplib.IMAP4, folder: str) -> int:
        response = await command(client.select(folder))
        for line in response.lines:
            if isinstance(line, bytes | bytearray) and (match := _UIDVALIDITY.search(line)):
                return int(match.group(1))
        raise ChannelUnavailable(f"no UIDVALIDITY for {folder} of {self._key}")

    async def _uids_after(self, client: aioimaplib.IMAP4, last_uid: int) -> list[int]:
        # "n:*" names the last message even when its UID is below n: filtered out
        return [uid for uid in await search(client, f"UID {last_uid + 1}:*") if uid > last_uid]

    async def _fetch(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[Fetched]:
        """The batch's messages: whole, or, for one larger than the attachment limit, its size
        only (its bytes come piece by piece when it is published)."""
        async with self._fetching:
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
            if int(size.group(1)) <= self._policy.max_attachment_bytes:
                small.append(int(uid.group(1)))
                continue
            large.append(
                Fetched(
                    uid=int(uid.group(1)),
                    internal_date=_internal_date(line),
                    raw=b"",
                    size=int(size.group(1)),
                    large=True,
                )
            )
        whole = await self._fetch_whole(client, small) if small else []
        return sorted([*whole, *large], key=lambda message: message.uid)

    async def _fetch_whole(self, client: aioimaplib.IMAP4, uids: list[int]) -> list[Fetched]:
        fetched = await self._fetch_literals(client, uids, "(UID INTERNALDATE BODY.PEEK[])")
        return sorted(
            (Fetched(uid, _internal_date(head), body) for uid, (head, body) in fetched.items()),
            key=lambda message: message.uid,
        )

    async def _fetch_parts(
        self, client: aioimaplib.IMAP4, uids: list[int], part: str
    ) -> dict[int, bytes]:
        """UID -> that part of each message (e.g. some header fields)."""
        fetched = await self._fetch_literals(client, uids, f"(UID {part})")
        return {uid: body for uid, (_, body) in fetched.items()}

    async def _fetch_literals(
        self, client: aioimaplib.IMAP4, uids: list[int], items: str
    ) -> dict[int, tuple[bytes, bytes]]:
        """UID -> (the FETCH line, the literal that follows it) of each message."""
        async with self._fetching:
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

    async def _raw_message(
        self,
        parsed: ParsedMail,
        message: Fetched,
        source_key: str,
        raw_uri: str,
        oversized: list[OversizedPart],
    ) -> RawMessage:
        received = message.internal_date or parsed.date or datetime.now(UTC)
        flags = set(parsed.flags)
        if datetime.now(UTC) - received > self._policy.backlog_after:
            flags.add(Flag.BACKLOG)
        text, html, whole = _bounded_bodies(parsed)
        if whole:
            flags.add(Flag.NEEDS_REVIEW)  # the event carries the start; the whole is attached
        return RawMessage(
            channel=Channel.EMAIL,
            source_key=source_key,
            source_id=parsed.message_id or source_key.removeprefix("email:"),
            received_at=received,
            text=text,
            html=html,
            subject=parsed.subject,
            sender=Sender(name=parsed.sender_name, email=parsed.sender_email),
            attachments=tuple(
                [await self._store(p) for p in [*parsed.attachments, *whole]]
                + [self._rejected(part) for part in oversized]
            ),
            raw_uri=raw_uri,
            flags=frozenset(flags),
            # a bounce names the mail that came back: our Message-IDs carry the reference
            thread_references=parsed.thread_ids + parsed.bounced_message_ids,
            source=f"urn:intake-gateway:email:{self._account.mailbox}",
        )

    async def _store(self, part: MailPart) -> Attachment:
        name = safe_filename(part.filename)
        if len(part.payload) > self._policy.max_attachment_bytes:
            return self._rejected(OversizedPart(name, part.media_type, len(part.payload)))
        stored = await self._claims.put(part.payload)
        return Attachment(
            filename=name,
            media_type=part.media_type,
            size=stored.size,
            sha256=stored.sha256,
            uri=stored.uri,
        )

    def _rejected(self, part: OversizedPart) -> Attachment:
        return Attachment(
            filename=safe_filename(part.filename),
            media_type=part.media_type,
            size=part.size,
            status=AttachmentStatus.REJECTED,
            rejection_reason=f"larger than the {self._policy.max_attachment_bytes}-byte limit",
        )

    async def _move(self, client: aioimaplib.IMAP4, uids: list[int], folder: str) -> None:
        uid_set = message_set(uids)
        if client.has_capability("MOVE"):
            await command(client.uid("move", uid_set, folder))
            return
        await command(client.uid("copy", uid_set, folder))
        await command(client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)"))
        await command(client.expunge())

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


def imap_date(moment: datetime) -> str:
    """``1-Dec-2026``, as SEARCH SINCE wants it (English months, whatever the locale)."""
    return f"{moment.day}-{_MONTHS[moment.month - 1]}-{moment.year}"


def _internal_date(head: bytes) -> datetime | None:
    match = _INTERNALDATE.search(head)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1).decode(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def _bounded_bodies(parsed: ParsedMail) -> tuple[str, str | None, list[MailPart]]:
    """Text and HTML cut to what an event can carry (as the web form's body: MAX_BODY_CHARS;
    a 3 MB text made an event Kafka refused, and the mail went to quarantine). What was cut
    is kept whole as an attachment, so the case team still has every word."""
    text, html, whole = parsed.text, parsed.html, []
    if len(text) > MAX_BODY_CHARS:
        whole.append(MailPart("message-text.txt", "text/plain", text.encode("utf-8")))
        text = text[:MAX_BODY_CHARS]
    if html is not None and len(html) > MAX_HTML_CHARS:
        whole.append(MailPart("message.html", "text/html", html.encode("utf-8")))
        html = html[:MAX_HTML_CHARS]
    return text, html, whole


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
