"""A Kafka record the notifier cannot read, or cannot act on, as the DLQ reports it.

The notifier parses records with pydantic, whose JSON parser bounds its own nesting; a record
that fails is not skipped in silence but published on ``intake.dlq.v1`` (``channel``:
``notifier``, ``source_message``: the record's place), then its offset is committed with its
batch, and the consumer goes on. So is an event whose data the notifier fails on (a fault of
ours the data reveals: ``notification_failed``), rather than the service stopping on it at
every start.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from gateway.events.common import SourceMessage
from gateway.events.dlq import IntakeRejected, Reader
from gateway.jsondepth import DEFAULT_MAX_DEPTH, TooDeep, check_depth


class Readable(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


def unreadable_record(
    record: Readable, error: ValueError, reader: Reader = Reader.NOTIFIER
) -> IntakeRejected:
    """The DLQ's account of a record that is not a readable event: ``too_deep`` when its JSON
    nests past ``DEFAULT_MAX_DEPTH`` (64) (scanned only once parsing failed, off the common path),
    else ``unreadable_event``. ``reader``: the service that read it (the notifier, the tracker)."""
    try:
        check_depth(record.value or b"", DEFAULT_MAX_DEPTH)
    except TooDeep:
        code = "too_deep"
        reason = f"the record's JSON nests deeper than {DEFAULT_MAX_DEPTH} levels; it was skipped"
    else:
        code = "unreadable_event"
        reason = f"the record is not a readable event ({str(error)[:500]}); it was skipped"
    return _skipped(record, reader, code, reason)


DATA_FAULTS = (ValueError, TypeError, LookupError, AttributeError)  # UnicodeError is a ValueError


def failed_record(record: Readable, reference: str, error: Exception) -> IntakeRejected:
    """The DLQ's account of a readable event the notifier failed on (``DATA_FAULTS``)."""
    fault = f"{type(error).__name__}: {str(error)[:400]}"
    reason = f"the notifier failed on this event ({fault}); it was skipped, nothing was sent"
    return _skipped(record, Reader.NOTIFIER, "notification_failed", reason, reference=reference)


def _skipped(
    record: Readable, reader: Reader, code: str, reason: str, **details: str
) -> IntakeRejected:
    """A skipped record as the DLQ reports it: where it lies (``kafka://topic/partition/
    offset``), and why."""
    place = f"{record.topic}/{record.partition}/{record.offset}"
    return IntakeRejected(
        channel=reader,
        reason_code=code,
        reason=reason,
        source_message=SourceMessage(id=f"kafka:{place}", uri=f"kafka://{place}"),
        received_at=datetime.now(UTC),
        details={
            "topic": record.topic,
            "partition": str(record.partition),
            "offset": str(record.offset),
            **details,
        },
    )
