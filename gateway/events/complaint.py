"""Payloads (CloudEvents ``data``) of the events about a complaint, on ``complaints.v1``."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, Field

from gateway.events.common import (
    Attachment,
    Channel,
    Due,
    Frozen,
    Identifier,
    Person,
    RepresentedPerson,
    SourceMessage,
)

REFERENCE_PATTERN = r"^[A-Z]{2,4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$"


class Kind(StrEnum):
    """What the person sends. A complaint is dissatisfaction with the office's own service that
    needs follow-up; a denunciation reports a breach of law or rules (may be anonymous); a comment
    needs no follow-up; an information request asks a question."""

    COMPLAINT = "complaint"
    DENUNCIATION = "denunciation"
    COMMENT = "comment"
    INFORMATION_REQUEST = "information_request"
    UNKNOWN = "unknown"


class Flag(StrEnum):
    """Facts about an input that the case team or the notifier must act on."""

    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    ABUSIVE_LANGUAGE = "abusive_language"
    LOW_OCR_CONFIDENCE = "low_ocr_confidence"
    NEEDS_REVIEW = "needs_review"
    POSSIBLE_DUPLICATE = "possible_duplicate"
    BACKLOG = "backlog"
    OTHER_BODY = "other_body"


class RoutingHint(Frozen):
    """The text seems to belong to another body; ``rule`` names the rule that fired."""

    body: str = Field(
        description="e.g. professional-order, pharmacovigilance, complementary-insurer"
    )
    rule: str


class ComplaintReceived(Frozen):
    """A new complaint, denunciation, comment or request, from any channel."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    channel: Channel
    received_at: AwareDatetime
    kind: Kind = Kind.UNKNOWN
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$", description="ISO 639-1")
    subject: str | None = None
    body: str = Field(description="what the person wrote, without quoted replies or signature")
    quoted_text: str | None = Field(default=None, description="earlier messages they quoted")
    signature: str | None = None
    complainant: Person
    represented_person: RepresentedPerson | None = None
    identifiers: list[Identifier] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    source_message: SourceMessage
    flags: list[Flag] = Field(default_factory=list)
    due: Due | None = Field(default=None, description="null when no policy applies (e.g. bounce)")
    in_reply_to: str | None = Field(default=None, pattern=REFERENCE_PATTERN)
    routing: list[RoutingHint] = Field(default_factory=list)
    possible_duplicate_of: str | None = Field(default=None, pattern=REFERENCE_PATTERN)
    letter_date: date | None = Field(
        default=None, description="the date written on a scanned letter (postal), if read"
    )


class DocumentAdded(Frozen):
    """New documents (or a follow-up text) for a complaint already filed."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    channel: Channel
    received_at: AwareDatetime
    body: str | None = Field(default=None, description="accompanying text, if any")
    attachments: list[Attachment] = Field(default_factory=list)
    source_message: SourceMessage
    flags: list[Flag] = Field(default_factory=list)


class ContactKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class VerificationMethod(StrEnum):
    EMAIL_LINK = "email_link"
    SMS_CODE = "sms_code"


class ContactVerified(Frozen):
    """The person proved they control an email address or phone number."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    contact: ContactKind
    value: str
    method: VerificationMethod
    verified_at: AwareDatetime


class Status(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    AWAITING_INFORMATION = "awaiting_information"
    TRANSFERRED = "transferred"
    ANSWERED = "answered"
    CLOSED = "closed"


class StatusChanged(Frozen):
    """Published by a case system when a complaint advances; the notifier tells the person."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    status: Status
    previous_status: Status | None = None
    changed_at: AwareDatetime
    message: str | None = Field(default=None, description="a note for the person, if any")
    transferred_to: str | None = Field(default=None, description="the competent body, if any")
