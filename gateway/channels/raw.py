"""``RawMessage``: what a channel hands the normalizers, before any business rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.events.common import Attachment, Channel
from gateway.events.complaint import Flag


@dataclass(frozen=True)
class Sender:
    """What the source itself says about the sender (a mail's From, an SMS's number)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None
    email_verified: bool = False
    phone_verified: bool = False


@dataclass(frozen=True)
class RawMessage:
    """One input as the channel received it.

    ``source_key`` is unique at the source and stable across redeliveries (``email:<Message-ID>``,
    ``webform:<form>:<idempotency key>``, ``postal:<sha256>``, ``sms:<MessageSid>``): the
    reference and the event ids are derived from it.
    """

    channel: Channel
    source_key: str
    source_id: str
    received_at: datetime
    text: str = ""
    html: str | None = None
    subject: str | None = None
    sender: Sender = field(default_factory=Sender)
    fields: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    raw_uri: str | None = None
    flags: frozenset[Flag] = frozenset()
    thread_references: tuple[str, ...] = ()
    source: str = "urn:intake-gateway"


def safe_filename(filename: str | None) -> str:
    """A file name fit to show and store: no path, no control characters, at most 255 chars."""
    name = (filename or "attachment").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(character for character in name if character.isprintable()).strip(" .")
    return name[:255] or "attachment"
