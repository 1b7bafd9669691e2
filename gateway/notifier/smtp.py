"""Email through an SMTP server (aiosmtplib): multipart text + HTML, a few kept connections.

Each message has a ``Message-ID`` derived from its notification id (a retry of the same
notification carries the same id, so a receiving system can drop a double), ``In-Reply-To`` and
``References`` when it answers an email, and ``Auto-Submitted: auto-replied`` (RFC 3834) so other
robots do not answer it. SMTP replies map to our errors: 5xx is permanent, 4xx and a lost
connection are temporary (RFC 5321 section 4.2.1). An address whose mailbox is not ASCII
(``chloé.côté@example.org``, RFC 6531) goes with SMTPUTF8 when the server offers it, and is a
permanent failure when it does not (the next way to reach the person is tried).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from email.headerregistry import Address
from email.utils import parseaddr

import aiosmtplib
from aiosmtplib.typing import SMTPStatus

from gateway.errors import (
    ConfigurationError,
    PermanentSendError,
    ProviderUnavailable,
    TemporarySendError,
)
from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.mime import alternative_message, encoded_address
from gateway.settings import SmtpSettings


def message_id(message: OutgoingMessage, sender: str) -> str:
    """``<reference.id@domain>`` (id: 64 bits of the notification id, unique per complaint):
    a bounce that quotes it names the complaint."""
    short_id = message.notification_id.replace("-", "")[:16]
    return f"<{message.reference}.{short_id}@{_domain(sender)}>"


def compose(message: OutgoingMessage, sender: str) -> bytes:
    """The MIME bytes of one notification (see ``mime.py``)."""
    headers = [
        ("From", encoded_address(sender)),
        ("To", message.recipient),
        ("Subject", message.content.subject),
        ("Message-ID", message_id(message, sender)),
        ("Auto-Submitted", "auto-replied" if message.in_reply_to else "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("X-Gateway-Reference", message.reference),
        ("Content-Language", message.content.language),
    ]
    if thread := message.in_reply_to or message.follows:
        headers += [("In-Reply-To", thread), ("References", thread)]
    return alternative_message(
        headers, message.content.text, message.content.html, message.notification_id
    )


class SmtpSender:
    medium = Medium.EMAIL

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.host or not settings.from_:
            raise ConfigurationError(
                "GATEWAY_SMTP_HOST: the notifier needs an SMTP server and FROM"
            )
        self._settings = settings
        self._sender = settings.from_
        Address(addr_spec=_addr_spec(settings.from_))  # a bad FROM fails at start-up
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.connections)

    async def send(self, message: OutgoingMessage) -> str:
        content = compose(message, self._sender)
        async with self._slots:
            client = await self._connection()
            try:
                await _transmit(client, _addr_spec(self._sender), message.recipient, content)
            except aiosmtplib.SMTPResponseException as exc:
                self._idle.put_nowait(client)  # the server answered: the session goes on
                raise _refusal(exc) from exc
            except aiosmtplib.SMTPNotSupported as exc:  # checked before MAIL: the session is fine
                self._idle.put_nowait(client)
                msg = f"the SMTP server does not take this address (no SMTPUTF8): {exc}"
                raise PermanentSendError(msg) from exc
            except ValueError as exc:  # an address aiosmtplib cannot write (UnicodeError too)
                self._idle.put_nowait(client)
                raise PermanentSendError(f"an address SMTP cannot carry: {exc}") from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                client.close()
                raise ProviderUnavailable(f"SMTP server unreachable: {exc}") from exc
            self._idle.put_nowait(client)
        return message_id(message, self._sender)

    async def _connection(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.user,
            password=settings.password.get_secret_value() if settings.password else None,
            use_tls=settings.tls,
            start_tls=settings.starttls or None,
            timeout=settings.timeout_s,
            local_hostname=_domain(self._sender),
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ProviderUnavailable(f"SMTP server unreachable: {exc}") from exc
        return client

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), timeout=5)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()


async def _transmit(client: aiosmtplib.SMTP, sender: str, recipient: str, content: bytes) -> None:
    """MAIL, RCPT, DATA: what aiosmtplib's ``sendmail`` does for one recipient, less its four
    parses of the two addresses (``email.utils.parseaddr``: they are bare addresses already;
    ``execute_command`` still refuses a control character in them) and its pass over the
    message to size it (``transmitted_size``): a tenth of the notifier's CPU between them. After
    a refusal the envelope is reset (RSET)."""
    utf8 = not (sender.isascii() and recipient.isascii())
    if utf8 and not client.supports_extension("smtputf8"):
        raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
    options = ["SMTPUTF8"] if utf8 else []
    if client.supports_extension("size"):
        options.insert(0, f"SIZE={transmitted_size(content)}")
    encoding = "utf-8" if utf8 else "ascii"
    mail_from = [b"FROM:<" + sender.encode(encoding) + b">", *(o.encode() for o in options)]
    try:
        reply = await client.execute_command(b"MAIL", *mail_from)
        if reply.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        reply = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">")
        if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
        await client.data(content)
    except aiosmtplib.SMTPResponseException:
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await client.rset()
        raise


def transmitted_size(content: bytes) -> int:
    """The octets of ``content`` as DATA carries it, each lone CR or LF made CRLF and a CRLF
    ended (RFC 1870's SIZE), counted rather than rewritten."""
    pairs = content.count(b"\r\n")
    lone = content.count(b"\n") + content.count(b"\r") - 2 * pairs
    ended = content.endswith((b"\n", b"\r"))
    return len(content) + lone + (0 if ended else 2)


def _refusal(exc: aiosmtplib.SMTPResponseException) -> Exception:
    """A 5xx reply is permanent, a 4xx one temporary (RFC 5321 section 4.2.1)."""
    text = f"SMTP {exc.code}: {exc.message}"
    if exc.code >= 500:
        return PermanentSendError(text)
    return TemporarySendError(text)


@functools.lru_cache(maxsize=64)  # the sender's, parsed at every message otherwise
def _addr_spec(value: str) -> str:
    return parseaddr(value)[1]


@functools.lru_cache(maxsize=64)
def _domain(sender: str) -> str:
    return _addr_spec(sender).rpartition("@")[2] or "localhost"
