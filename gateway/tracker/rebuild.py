"""``intake-gateway tracker rebuild``: the tracker's state made again from the topics.

The store is emptied, then every record of ``complaints.v1`` and ``notifications.v1`` from the
first offset up to the end as it was once emptied is read (no consumer group: the service's
offsets stay as they are) and folded as the service folds it. The service may run meanwhile:
what it folds after the emptying is either read by the rebuild too (the store keeps it once) or
past the rebuild's end (kept by the service), and the fold does not depend on the order it
reads the entries in, so the result is the same. Unreadable records are counted and skipped
(the service reported them on the DLQ when it read them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.events import topics
from gateway.kafka_security import client_security, reaching, start_or_stop
from gateway.settings import KafkaSettings
from gateway.store.tracker import Fold, TimelineEntry, TrackerStore
from gateway.tracker.erasures import ErasedComplaints
from gateway.tracker.service import read_event
from gateway.tracker.timeline import entry_of

BATCH = 2000  # records read, and entries applied, at once


@dataclass(frozen=True)
class Rebuilt:
    records: int
    entries: int
    unreadable: int
    seconds: float


async def rebuild(
    settings: KafkaSettings,
    store: TrackerStore,
    fold: Fold,
    batch: int = BATCH,
    erasures: ErasedComplaints | None = None,
) -> Rebuilt:
    """``erasures``: the complaints erased are left out (their events may still be on the
    topics)."""
    started = time.monotonic()
    with reaching(settings.bootstrap):
        partitions = await _partitions(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_security(settings),
    )
    await start_or_stop(consumer, settings.bootstrap)
    try:
        await store.clear()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for partition, first in (await consumer.beginning_offsets(partitions)).items():
            consumer.seek(partition, first)  # explicit: a lazy reset may land on the end
        counts = await _read_to(consumer, ends, store, fold, batch, erasures)
    finally:
        await consumer.stop()
    return Rebuilt(*counts, seconds=time.monotonic() - started)


async def _partitions(settings: KafkaSettings) -> list[TopicPartition]:
    """Every partition of the two topics (from the brokers' metadata)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_security(settings),
    )
    try:
        await admin.start()
        described = await admin.describe_topics([topics.COMPLAINTS, topics.NOTIFICATIONS])
    finally:
        await admin.close()
    return [
        TopicPartition(entry["topic"], partition["partition"])
        for entry in described
        for partition in sorted(entry["partitions"], key=lambda found: found["partition"])
    ]


async def _read_to(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    store: TrackerStore,
    fold: Fold,
    batch: int,
    erasures: ErasedComplaints | None,
) -> tuple[int, int, int]:
    remaining = {partition for partition, end in ends.items() if end > 0}
    records = entries = unreadable = 0
    while remaining:
        read = await consumer.getmany(*remaining, timeout_ms=1000, max_records=batch)
        found: list[TimelineEntry] = []
        for partition, batch_records in read.items():
            for record in batch_records:
                if record.offset >= ends[partition]:
                    continue
                records += 1
                try:
                    event = read_event(record.value or b"")
                except ValueError:
                    unreadable += 1
                    continue
                if event is not None and (entry := entry_of(event)) is not None:
                    found.append(entry)
        if found and erasures is not None:
            found = await erasures.without_erased(found)
        if found:
            await store.apply(found, fold)
            entries += len(found)
        for partition in list(remaining):
            if await consumer.position(partition) >= ends[partition]:
                remaining.discard(partition)
    return records, entries, unreadable
