"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the notifier.

It runs in its own thread (aiosmtpd's Controller), can be stopped and started again on the same
port (the "SMTP down for a while" fault), and can refuse chosen recipients with a 5xx reply.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.kafka import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class MailSink:
    """aiosmtpd handler: keeps every accepted message; refuses addresses in ``refuse``; takes
    ``delay_s`` before answering DATA."""

    refuse: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slower server: sends overlap a kill
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
            )
        return "250 Message accepted"


class SmtpServer:
    """``smtputf8``: the server offers SMTPUTF8 (RFC 6531: addresses whose mailbox is not
    ASCII); aiosmtpd's default, as many servers, does not."""

    def __init__(
        self, sink: MailSink | None = None, port: int | None = None, *, smtputf8: bool = False
    ) -> None:
        self.sink = sink or MailSink()
        self.port = port or free_port()
        self.smtputf8 = smtputf8
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.sink.lock:
            return [received.message for received in self.sink.received]

    async def wait_for(self, count: int, timeout_s: float = 30.0) -> list[EmailMessage]:
        """At least ``count`` messages (the event loop keeps running meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            await asyncio.sleep(0.05)
        got = len(self.messages)
        raise AssertionError(f"expected {count} messages, the SMTP server got {got}")

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "from": "plaintes@ramq.example", **extra}
