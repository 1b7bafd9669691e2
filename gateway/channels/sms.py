"""Inbound SMS from Twilio: the form parameters of Twilio's messaging webhook -> ``RawMessage``.

Twilio posts ``MessageSid``, ``From``, ``To``, ``Body`` and, for MMS, ``NumMedia`` with
``MediaUrl<i>``/``MediaContentType<i>``. The SID keys the input (a redelivery is the same input).
Media stay at Twilio (fetching them needs the account's credentials and a size check): they are
listed as attachments with their Twilio URL, status ``rejected``, so the case team sees them.
A text that answers one of our messages (``answers``: the reference we last wrote to this number
about) becomes a follow-up of that complaint through ``thread_references``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from gateway.channels.raw import RawMessage, Sender
from gateway.errors import InputRejected
from gateway.events.common import Attachment, AttachmentStatus, Channel

SOURCE = "urn:intake-gateway:sms"
_SID = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
MAX_MEDIA = 10


def message_sid(params: Mapping[str, str]) -> str:
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not _SID.match(sid):
        raise InputRejected("invalid_sms", "the webhook has no valid MessageSid")
    return sid


def raw_sms(
    params: Mapping[str, str],
    received_at: datetime,
    raw_uri: str | None = None,
    answers: str | None = None,
) -> RawMessage:
    sid = message_sid(params)
    sender = params.get("From", "").strip()
    if not sender:
        raise InputRejected("invalid_sms", "the webhook has no From number")
    return RawMessage(
        channel=Channel.SMS,
        source_key=f"sms:{sid}",
        source_id=sid,
        received_at=received_at,
        text=params.get("Body", ""),
        sender=Sender(phone=sender),
        attachments=_media(params),
        raw_uri=raw_uri,
        thread_references=(answers,) if answers else (),
        source=SOURCE,
    )


def _media(params: Mapping[str, str]) -> tuple[Attachment, ...]:
    try:
        count = min(int(params.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    return tuple(
        Attachment(
            filename=f"mms-{index + 1}",
            media_type=params.get(f"MediaContentType{index}", "application/octet-stream"),
            size=0,
            uri=params.get(f"MediaUrl{index}"),
            status=AttachmentStatus.REJECTED,
            rejection_reason="MMS media are not fetched; they stay at Twilio under this URL",
        )
        for index in range(count)
    )
