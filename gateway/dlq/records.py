"""A rejection as the ``DlqStore`` keeps it: the ``intake.rejected`` event and the input."""

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
