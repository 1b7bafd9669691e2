"""Payload of ``intake.dlq.v1``: an input that could not become a complaint, and why."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from gateway.events.common import Channel, Frozen, SourceMessage


class IntakeRejected(Frozen):
    """The raw input is kept at ``source_message.uri``; ``reason`` tells a person what to do."""

    channel: Channel
    reason_code: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$", description="machine-readable, e.g. unparseable_mime"
    )
    reason: str = Field(description="one clear sentence for the operator")
    source_message: SourceMessage
    received_at: AwareDatetime
    details: dict[str, str] = Field(default_factory=dict)
