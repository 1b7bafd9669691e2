"""Payload of ``intake.dlq.v1``: an input that could not become a complaint, and why."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from gateway.events.common import Channel, Frozen, SourceMessage


class Reader(StrEnum):
    """A service of the gateway reading a topic, when a record it read is what was rejected
    (``source_message.uri`` is then the record's place: ``kafka://topic/partition/offset``)."""

    NOTIFIER = "notifier"
    TRACKER = "tracker"


class IntakeRejected(Frozen):
    """The raw input is kept at ``source_message.uri``; ``reason`` tells a person what to do."""

    channel: Channel | Reader = Field(
        description="the input's channel, or the service that could not read a Kafka record"
    )
    reason_code: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="machine-readable, e.g. unparseable_mime"
    )
    reason: str = Field(description="one clear sentence for the operator")
    source_message: SourceMessage
    received_at: AwareDatetime
    details: dict[str, str] = Field(default_factory=dict)
