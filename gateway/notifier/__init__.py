"""The notifier: consumes ``complaints.v1`` and keeps the office's promises to each person.

It sends acknowledgements (email, else SMS), email-validation links and status updates through
one ``Sender`` per medium (``smtp.py``, ``twilio.py``, ``letters.py``), and records every send as
``notification.requested`` then ``notification.sent`` / ``notification.failed`` on
``notifications.v1``. It imports the event schemas, never the channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.events.notification import Medium
from gateway.notifier.templates import RenderedMessage


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient, rendered and ready for its medium."""

    notification_id: str
    reference: str
    recipient: str
    content: RenderedMessage
    in_reply_to: str | None = None  # the person's message this answers
    follows: str | None = None  # our earlier message about the same complaint (mail threads)


class Sender(Protocol):
    """Hands a message to a provider. Returns the provider's id (Message-ID, Twilio SID, file).

    Raises ``TemporarySendError`` when a retry may succeed, ``PermanentSendError`` when not.
    """

    medium: Medium

    async def send(self, message: OutgoingMessage) -> str: ...

    async def close(self) -> None: ...
