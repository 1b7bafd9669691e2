"""CloudEvents 1.0 envelopes (structured JSON mode) of every event type, and how to build them.

Each event type has a concrete envelope class whose ``type`` and ``dataschema`` are fixed and whose
``data`` is typed; JSON Schemas are generated from these classes (``intake-gateway schema export``).
Event ids are deterministic: uuid5 over the event type and the input's source key, so the same
input yields the same ``id`` on every replica and every redelivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, Field

from gateway.events import topics
from gateway.events.common import Frozen
from gateway.events.complaint import (
    ComplaintReceived,
    ContactVerified,
    DocumentAdded,
    StatusChanged,
)
from gateway.events.dlq import IntakeRejected
from gateway.events.erasure import ComplaintErased
from gateway.events.feedback import FeedbackReceived
from gateway.events.notification import (
    NotificationFailed,
    NotificationRequested,
    NotificationSent,
)

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/cloudevents+json"
SCHEMA_VERSION: Final = "v1"
EVENT_ID_NAMESPACE: Final = uuid.UUID("6f1c1a52-3f0e-5b7e-9a57-3c2b8f4e1d10")
DEFAULT_SOURCE: Final = "urn:intake-gateway"

DataT = TypeVar("DataT", bound=BaseModel)


def schema_uri(event_type: str) -> str:
    return f"urn:intake-gateway:schema:{event_type}.{SCHEMA_VERSION}"


class CloudEvent(Frozen, Generic[DataT]):
    """A CloudEvents 1.0 event in structured JSON mode."""

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, description="URI-reference of the producing channel")
    type: str
    time: AwareDatetime
    subject: str = Field(min_length=1, description="the complaint's reference (DLQ: source id)")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    data: DataT


class ComplaintReceivedEvent(CloudEvent[ComplaintReceived]):
    type: Literal["complaint.received"] = "complaint.received"
    dataschema: Literal["urn:intake-gateway:schema:complaint.received.v1"] = (
        "urn:intake-gateway:schema:complaint.received.v1"
    )


class DocumentAddedEvent(CloudEvent[DocumentAdded]):
    type: Literal["complaint.document_added"] = "complaint.document_added"
    dataschema: Literal["urn:intake-gateway:schema:complaint.document_added.v1"] = (
        "urn:intake-gateway:schema:complaint.document_added.v1"
    )


class ContactVerifiedEvent(CloudEvent[ContactVerified]):
    type: Literal["complaint.contact_verified"] = "complaint.contact_verified"
    dataschema: Literal["urn:intake-gateway:schema:complaint.contact_verified.v1"] = (
        "urn:intake-gateway:schema:complaint.contact_verified.v1"
    )


class StatusChangedEvent(CloudEvent[StatusChanged]):
    type: Literal["complaint.status_changed"] = "complaint.status_changed"
    dataschema: Literal["urn:intake-gateway:schema:complaint.status_changed.v1"] = (
        "urn:intake-gateway:schema:complaint.status_changed.v1"
    )


class FeedbackReceivedEvent(CloudEvent[FeedbackReceived]):
    type: Literal["complaint.feedback_received"] = "complaint.feedback_received"
    dataschema: Literal["urn:intake-gateway:schema:complaint.feedback_received.v1"] = (
        "urn:intake-gateway:schema:complaint.feedback_received.v1"
    )


class ComplaintErasedEvent(CloudEvent[ComplaintErased]):
    type: Literal["complaint.erased"] = "complaint.erased"
    dataschema: Literal["urn:intake-gateway:schema:complaint.erased.v1"] = (
        "urn:intake-gateway:schema:complaint.erased.v1"
    )


class NotificationRequestedEvent(CloudEvent[NotificationRequested]):
    type: Literal["notification.requested"] = "notification.requested"
    dataschema: Literal["urn:intake-gateway:schema:notification.requested.v1"] = (
        "urn:intake-gateway:schema:notification.requested.v1"
    )


class NotificationSentEvent(CloudEvent[NotificationSent]):
    type: Literal["notification.sent"] = "notification.sent"
    dataschema: Literal["urn:intake-gateway:schema:notification.sent.v1"] = (
        "urn:intake-gateway:schema:notification.sent.v1"
    )


class NotificationFailedEvent(CloudEvent[NotificationFailed]):
    type: Literal["notification.failed"] = "notification.failed"
    dataschema: Literal["urn:intake-gateway:schema:notification.failed.v1"] = (
        "urn:intake-gateway:schema:notification.failed.v1"
    )


class IntakeRejectedEvent(CloudEvent[IntakeRejected]):
    type: Literal["intake.rejected"] = "intake.rejected"
    dataschema: Literal["urn:intake-gateway:schema:intake.rejected.v1"] = (
        "urn:intake-gateway:schema:intake.rejected.v1"
    )


@dataclass(frozen=True)
class EventSpec:
    """One event type: its envelope class, its payload class and the topic it goes to."""

    event_type: str
    envelope: type[CloudEvent[Any]]
    data: type[BaseModel]
    topic: str

    @property
    def schema_name(self) -> str:
        return f"{self.event_type}.{SCHEMA_VERSION}"


EVENT_SPECS: Final[tuple[EventSpec, ...]] = (
    EventSpec("complaint.received", ComplaintReceivedEvent, ComplaintReceived, topics.COMPLAINTS),
    EventSpec("complaint.document_added", DocumentAddedEvent, DocumentAdded, topics.COMPLAINTS),
    EventSpec(
        "complaint.contact_verified", ContactVerifiedEvent, ContactVerified, topics.COMPLAINTS
    ),
    EventSpec("complaint.status_changed", StatusChangedEvent, StatusChanged, topics.COMPLAINTS),
    EventSpec(
        "complaint.feedback_received",
        FeedbackReceivedEvent,
        FeedbackReceived,
        topics.COMPLAINTS,
    ),
    EventSpec("complaint.erased", ComplaintErasedEvent, ComplaintErased, topics.COMPLAINTS),
    EventSpec(
        "notification.requested",
        NotificationRequestedEvent,
        NotificationRequested,
        topics.NOTIFICATIONS,
    ),
    EventSpec("notification.sent", NotificationSentEvent, NotificationSent, topics.NOTIFICATIONS),
    EventSpec(
        "notification.failed", NotificationFailedEvent, NotificationFailed, topics.NOTIFICATIONS
    ),
    EventSpec("intake.rejected", IntakeRejectedEvent, IntakeRejected, topics.DLQ),
)
SPEC_BY_TYPE: Final = {spec.event_type: spec for spec in EVENT_SPECS}
SPEC_BY_DATA: Final = {spec.data: spec for spec in EVENT_SPECS}


def event_id(event_type: str, source_key: str) -> str:
    """Deterministic CloudEvent id: the same input and event type give the same id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}\n{source_key}"))


def subject_of(data: BaseModel, source_key: str) -> str:
    reference = getattr(data, "reference", None)
    return reference if isinstance(reference, str) else source_key


def make_event(
    data: BaseModel,
    *,
    source_key: str,
    source: str = DEFAULT_SOURCE,
    time: datetime | None = None,
) -> CloudEvent[Any]:
    """Wrap a payload in its envelope. ``source_key`` identifies the input that caused it."""
    spec = SPEC_BY_DATA[type(data)]
    return spec.envelope.model_validate(
        {
            "id": event_id(spec.event_type, source_key),
            "source": source,
            "time": time or datetime.now(UTC),
            "subject": subject_of(data, source_key),
            "data": data,
        }
    )


def event_type(raw: bytes | str) -> str:
    """The ``type`` of a structured-mode CloudEvent, without validating the rest (a consumer
    that handles a few types skips the others for the price of this)."""
    return event_header(raw).type


def event_header(raw: bytes | str) -> EventHeader:
    """The ``type`` and ``source`` of a structured-mode CloudEvent, the rest not validated."""
    return EventHeader.model_validate_json(raw)


def parse_event(raw: bytes | str, kind: str | None = None) -> CloudEvent[Any]:
    """Parse a structured-mode CloudEvent into its typed envelope (by its ``type``; ``kind``:
    the type when the caller has read it already)."""
    kind = kind or event_type(raw)
    spec = SPEC_BY_TYPE.get(kind)
    if spec is None:
        msg = f"unknown event type {kind!r}"
        raise ValueError(msg)
    return spec.envelope.model_validate_json(raw)


class EventHeader(BaseModel):
    type: str
    source: str = ""
