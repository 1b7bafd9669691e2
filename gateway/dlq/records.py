"""A rejection as the ``DlqStore`` keeps it: the ``intake.rejected`` event and the input, or, for
a Kafka record a service could not read (the notifier, the tracker), the event alone."""

from __future__ import annotations

from typing import Any

from gateway.channels.raw import RawMessage
from gateway.events.envelope import CloudEvent
from gateway.store.dlq import DlqRecord


def rejected_record(event: CloudEvent[Any], raw: RawMessage) -> DlqRecord:
    """``event``: the ``intake.rejected`` event published for ``raw``. The source key is kept:
    a redrive publishes under the event ids derived from it."""
    rejected = event.data
    return DlqRecord(
        id=event.id,
        channel=str(rejected.channel),
        reason_code=rejected.reason_code,
        reason=rejected.reason,
        source_key=raw.source_key,
        source=raw.source,
        source_id=raw.source_id,
        source_uri=raw.raw_uri,
        received_at=raw.received_at,
        recorded_at=event.time,
        details=dict(rejected.details),
    )


def unread_record(event: CloudEvent[Any], source_key: str) -> DlqRecord:
    """``event``: the ``intake.rejected`` event of a Kafka record the notifier or the tracker
    could not read, published under ``source_key``. Nothing of it is stored (the record is
    where its ``kafka://`` URI says, until the topic's retention): an operator looks, then
    dismisses it; it cannot be redriven."""
    rejected = event.data
    return DlqRecord(
        id=event.id,
        channel=str(rejected.channel),
        reason_code=rejected.reason_code,
        reason=rejected.reason,
        source_key=source_key,
        source=event.source,
        source_id=rejected.source_message.id,
        source_uri=rejected.source_message.uri,
        received_at=rejected.received_at,
        recorded_at=event.time,
        details=dict(rejected.details),
    )
