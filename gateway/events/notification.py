"""Payloads of ``notifications.v1``: each message the notifier sends, and its outcome."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from gateway.events.common import Frozen
from gateway.events.complaint import REFERENCE_PATTERN


class Purpose(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    EMAIL_VERIFICATION = "email_verification"
    SMS_CODE = "sms_code"
    STATUS_UPDATE = "status_update"


class Medium(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"


class Notification(Frozen):
    """Fields common to a notification's request and outcome."""

    notification_id: str = Field(description="deterministic: the same trigger gives the same id")
    reference: str = Field(pattern=REFERENCE_PATTERN)
    purpose: Purpose
    medium: Medium
    recipient: str = Field(description="email address, E.164 phone or postal address")
    language: str | None = None
    attempt: int = Field(default=1, ge=1)


class NotificationRequested(Notification):
    template: str
    requested_at: AwareDatetime


class NotificationSent(Notification):
    sent_at: AwareDatetime
    provider_message_id: str | None = Field(default=None, description="Message-ID or Twilio SID")
    receipt_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="evidential receipt: SHA-256 over the canonical complaint event",
    )


class NotificationFailed(Notification):
    failed_at: AwareDatetime
    permanent: bool = Field(description="true: retrying will not help (e.g. unknown mailbox)")
    error: str
    next_step: Medium | None = Field(default=None, description="fallback taken, if any")
