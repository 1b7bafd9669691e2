"""The tracker service: its own consumer group on ``complaints.v1`` and ``notifications.v1``,
folding each complaint's events into where it stands (``TrackerStore``).

A batch read from Kafka becomes timeline entries (``timeline.entry_of``), applied in one
transaction of the store, and only then are its offsets committed: after a crash the batch
comes again and the store, keyed by event ids, changes nothing twice. A record that is not a
readable event goes to ``intake.dlq.v1`` (keyed ``tracker``) before its offset is committed,
and the next one is read. The store or Kafka unavailable: the same batch is tried again, with
backoff and jitter, until it lands (nothing is skipped, nothing committed meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter

from gateway.dlq.records import unread_record
from gateway.errors import PublishError, StateStoreError
from gateway.events.dlq import Reader
from gateway.events.envelope import CloudEvent, event_header, make_event, parse_event
from gateway.events.erasure import ComplaintErased
from gateway.kafka_security import group_consumer
from gateway.notifier.unreadable import unreadable_record
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from gateway.store.dlq import DlqStore
from gateway.store.tracker import Fold, TrackerStore
from gateway.tracker.erasures import ErasedComplaints
from gateway.tracker.timeline import entry_of

log = structlog.get_logger(__name__)
T = TypeVar("T")

SOURCE = "urn:intake-gateway:tracker"
RETRY_BASE_S, RETRY_MAX_S = 0.5, 30.0
# the types the timeline records; the others are skipped after reading the type alone
TRACKED_TYPES = frozenset(
    {
        "complaint.received",
        "complaint.document_added",
        "complaint.status_changed",
        "complaint.feedback_received",
        "complaint.erased",
        "notification.sent",
    }
)
FOLDED = Counter("gateway_tracker_events_total", "Events the tracker read, by outcome", ["outcome"])


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class TrackerService:
    name = "tracker"

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        store: TrackerStore,
        fold: Fold,
        publisher: KafkaPublisher,
        *,
        batch_size: int = 500,
        erasures: ErasedComplaints | None = None,
        dlq: DlqStore | None = None,
    ) -> None:
        self._consumer = consumer
        self._store = store
        self._fold = fold
        self._publisher = publisher
        self._batch_size = batch_size
        self._erasures = erasures
        self._dlq = dlq

    async def run(self) -> None:
        try:  # stopped however the run ends: a cancellation during the start included
            await self._consumer.start()
            while True:
                batches = await self._consumer.getmany(
                    timeout_ms=1000, max_records=self._batch_size
                )
                records = [record for batch in batches.values() for record in batch]
                if records:
                    await self.handle(records)
                    await self._commit(records)
        finally:
            await self._consumer.stop()

    async def handle(self, records: Sequence[Record]) -> int:
        """Fold the records' events into the store (no commit); how many entries were new."""
        events = [event for record in records if (event := await self._event(record))]
        entries = [entry for event in events if (entry := entry_of(event))]
        erased = {e.data.reference for e in events if isinstance(e.data, ComplaintErased)}
        if (erasures := self._erasures) is not None:
            read = len(entries)
            entries = await _until_done(lambda: erasures.without_erased(entries), "store")
            FOLDED.labels("erased").inc(read - len(entries))
        new = await _until_done(lambda: self._store.apply(entries, self._fold), "store")
        if erasures is not None and erased:
            await _until_done(lambda: erasures.forget(erased), "store")
        FOLDED.labels("folded").inc(new)
        FOLDED.labels("repeated").inc(len(entries) - new)
        return new

    async def _event(self, record: Record) -> CloudEvent[Any] | None:
        try:
            return read_event(record.value or b"")
        except ValueError as exc:
            await self._dead_letter(record, exc)
            FOLDED.labels("unreadable").inc()
            return None

    async def _dead_letter(self, record: Record, error: ValueError) -> None:
        rejected = unreadable_record(record, error, Reader.TRACKER)
        log.warning(
            "tracker.unreadable_event",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason_code=rejected.reason_code,
            error=str(error)[:300],
        )
        key = f"tracker:{rejected.source_message.id}"  # not the notifier's id for the same record
        event = make_event(rejected, source_key=key, source=SOURCE)
        await _until_done(lambda: self._publisher.publish(event), "kafka")
        if (dlq := self._dlq) is not None:  # the office's queue: to look at and dismiss
            kept = unread_record(event, key)
            await _until_done(lambda: dlq.add(kept), "store")

    async def _commit(self, records: Sequence[Record]) -> None:
        """The records' offsets, on the partitions still ours (after a rebalance their new
        reader starts from the last commit, and the store skips what is folded already)."""
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        assigned = self._consumer.assignment()
        mine = {partition: offset for partition, offset in offsets.items() if partition in assigned}
        try:
            if mine:
                await self._consumer.commit(mine)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("tracker.commit_failed", error=str(exc))


def read_event(raw: bytes) -> CloudEvent[Any] | None:
    """The event if the timeline records its type, None if not; ``ValueError`` when the record
    is not a readable event (pydantic's JSON parser bounds its own nesting)."""
    header = event_header(raw)
    if header.type not in TRACKED_TYPES:
        return None
    return parse_event(raw, header.type)


async def _until_done(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """``await attempt()`` again, with backoff and full jitter, while the store or Kafka is
    unavailable; only cancellation stops it."""
    failures = 0
    while True:
        try:
            result: T = await attempt()
        except (StateStoreError, PublishError) as exc:
            failures += 1
            delay = random.uniform(0, min(RETRY_MAX_S, RETRY_BASE_S * 2**failures))  # noqa: S311
            log.warning("tracker.retry", unavailable=what, error=str(exc), delay_s=round(delay, 2))
            await asyncio.sleep(delay)
        else:
            return result


def tracker_consumer(settings: KafkaSettings, group_id: str) -> AIOKafkaConsumer:
    return group_consumer(settings, group_id, "tracker")
