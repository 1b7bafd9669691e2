"""One mail as the intake takes it: its raw copy kept, its text read, a ``RawMessage`` made.

- The raw copy goes to the claim store first: as fetched, or, for a mail larger than the
  attachment limit, streamed from the server piece by piece (never held whole) and read back
  from the store with its oversized parts left out (``large_mail``): each is in the event as
  rejected, with its size.
- Attachments go to the claim store (one over the limit: rejected, with its size); text and
  HTML are cut to what an event can carry, the whole kept as an attachment.
- Mail older than ``backlog_after`` when imported is flagged ``backlog`` (the notifier's rule
  for late acknowledgements applies to it).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aioimaplib
import structlog

from gateway.channels.imap_fetch import Fetched, MessageFetcher
from gateway.channels.imap_policy import MailboxPolicy
from gateway.channels.large_mail import OversizedPart, reduce_large_mail
from gateway.channels.mail import MailPart, ParsedMail, parse_mail
from gateway.channels.raw import RawMessage, Sender, safe_filename
from gateway.errors import ChannelUnavailable
from gateway.events.common import Attachment, AttachmentStatus, Channel
from gateway.events.complaint import Flag
from gateway.store.claims import ClaimStore, StoredObject

log = structlog.get_logger(__name__)

MAX_BODY_CHARS = 100_000  # the web form's limit for a complaint's text
MAX_HTML_CHARS = 400_000  # markup takes room: about as much text once converted


class MailReader:
    """The mails of one mailbox (``key`` names it in logs, ``mailbox`` in event sources)."""

    def __init__(
        self,
        key: str,
        mailbox: str,
        claims: ClaimStore,
        fetcher: MessageFetcher,
        policy: MailboxPolicy,
    ) -> None:
        self._key, self._mailbox, self._claims = key, mailbox, claims
        self._fetcher, self._policy = fetcher, policy

    async def raw_copy(self, client: aioimaplib.IMAP4, message: Fetched) -> StoredObject:
        """The message's bytes kept in the claim store, as the server has them."""
        if message.large:
            return await self._stream_raw_copy(client, message)
        return await self._claims.put(message.raw)

    async def parse(
        self, message: Fetched, raw_copy: StoredObject
    ) -> tuple[ParsedMail, list[OversizedPart]]:
        """The mail read (a large one from its raw copy, without its oversized parts);
        ``InputRejected`` when it cannot be."""
        if message.large:
            return await self._read_large(raw_copy)
        return parse_mail(message.raw), []

    async def reread(self, raw_copy: StoredObject, received_at: datetime) -> RawMessage:
        """A mail's ``RawMessage`` from its stored raw copy, made as when the mail came (a DLQ
        redrive); ``InputRejected`` if it still cannot be read."""
        oversized: list[OversizedPart] = []
        if raw_copy.size > self._policy.max_attachment_bytes:
            parsed, oversized = await self._read_large(raw_copy)
        else:
            parsed = parse_mail(await self._claims.get(raw_copy.sha256))
        message = Fetched(0, received_at, b"", raw_copy.size)
        source_key = source_key_of(parsed, raw_copy)
        return await self.raw_message(parsed, message, source_key, raw_copy.uri, oversized)

    async def raw_message(
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
        text, html, whole = bounded_bodies(parsed)
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
            source=f"urn:intake-gateway:email:{self._mailbox}",
        )

    async def _stream_raw_copy(self, client: aioimaplib.IMAP4, message: Fetched) -> StoredObject:
        """A large mail's raw copy, stored as it comes from the server."""
        raw_copy = await self._claims.put_stream(self._fetcher.pieces(client, message.uid))
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


def source_key_of(parsed: ParsedMail, raw_copy: StoredObject) -> str:
    """A mail's source key: its Message-ID, or its bytes' SHA-256 without one."""
    return f"email:{parsed.message_id or 'sha256:' + raw_copy.sha256}"


def bounded_bodies(parsed: ParsedMail) -> tuple[str, str | None, list[MailPart]]:
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
