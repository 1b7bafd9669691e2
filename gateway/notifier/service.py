"""The notifier service: its own consumer group on ``complaints.v1`` and ``notifications.v1``.

Each batch from Kafka is split by key (the reference): one complaint's events are handled in
order, different complaints at once (up to ``GATEWAY_NOTIFIER_CONCURRENCY``). Offsets are
committed only when every notification of the batch has its outcome in the ledger; after a
crash the batch comes again and the ledger skips what was already sent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError

from gateway.errors import PublishError
from gateway.events import topics
from gateway.events.complaint import ComplaintReceived, DocumentAdded, Flag, StatusChanged
from gateway.events.envelope import CloudEvent, event_type, parse_event
from gateway.events.notification import Medium, NotificationRequested, Purpose
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.ledger import NotificationLedger
from gateway.notifier.planner import (
    AcknowledgementRule,
    PlannedNotification,
    Skipped,
    contact_of,
    notification_id,
    plan_status_update,
    routes,
)

log = structlog.get_logger(__name__)


class Record(Protocol):
    """What the notifier reads of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class NotifierService:
    name = "notifier"

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        dispatcher: Dispatcher,
        ledger: NotificationLedger,
        *,
        concurrency: int = 32,
        acknowledgements: AcknowledgementRule | None = None,
        drain_s: float = 30.0,
        batch_size: int = 100,
    ) -> None:
        self._consumer = consumer
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._slots = asyncio.Semaphore(concurrency)
        self._acknowledgements = acknowledgements or AcknowledgementRule()
        self._drain_s = drain_s
        self._batch_size = batch_size

    async def run(self) -> None:
        try:
            await self._consumer.start()
            while True:
                batches = await self._consumer.getmany(
                    timeout_ms=1000, max_records=self._batch_size
                )
                records = [record for batch in batches.values() for record in batch]
                if records:
                    await self._finish_on_stop(asyncio.ensure_future(self._handle_batch(records)))
        finally:
            await self._consumer.stop()
            await self._dispatcher.close()

    async def _finish_on_stop(self, work: asyncio.Future[None]) -> None:
        """On shutdown, a batch under way is finished (sends recorded, offsets committed) within
        ``drain_s``: a message cut mid-transaction could arrive without being recorded."""
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            log.info("notifier.draining", within_s=self._drain_s)
            try:
                await asyncio.wait_for(work, timeout=self._drain_s)
            except TimeoutError:
                log.warning("notifier.drain_timeout")
            raise

    async def _handle_batch(self, records: Sequence[Record]) -> None:
        try:
            await self.handle(records)
        except PublishError as exc:
            log.warning("notifier.kafka_unavailable", error=str(exc))
            await asyncio.sleep(5)
            await self._rewind()
            return
        try:
            await self._consumer.commit()
        except (CommitFailedError, KafkaError) as exc:  # the batch comes again; the ledger dedupes
            log.warning("notifier.commit_failed", error=str(exc))

    async def _rewind(self) -> None:
        """Read the uncommitted records again (nothing after the last commit is lost)."""
        for partition in self._consumer.assignment():
            committed = await self._consumer.committed(partition)
            if committed is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, committed)

    async def handle(self, records: Sequence[Record]) -> None:
        """Every notification these records call for, one complaint's in order."""
        by_key: dict[bytes | None, list[Record]] = defaultdict(list)
        for record in records:
            by_key[record.key].append(record)
        async with asyncio.TaskGroup() as group:
            for same_key in by_key.values():
                group.create_task(self._handle_in_order(same_key))

    async def _handle_in_order(self, records: list[Record]) -> None:
        async with self._slots:
            for record in records:
                event = _event(record)
                if event is not None:
                    await self.on_event(event)

    async def on_event(self, event: CloudEvent[Any]) -> None:
        data = event.data
        if isinstance(data, ComplaintReceived):
            await self._ledger.remember_contact(contact_of(data))
            await self._run(self._acknowledgements.plan(event, datetime.now(UTC)), event)
        elif isinstance(data, StatusChanged):
            contact = await self._ledger.contact(data.reference)
            follows = await self._ledger.acknowledgement_message_id(data.reference)
            await self._run(plan_status_update(event, contact, follows), event)
        elif isinstance(data, DocumentAdded) and Flag.BOUNCE in data.flags:
            await self._bounced(event, data)
        elif isinstance(data, NotificationRequested):
            await self._requested_elsewhere(event, data)

    async def _run(self, plan: PlannedNotification | Skipped, event: CloudEvent[Any]) -> None:
        if isinstance(plan, Skipped):
            log.info(
                "notifier.skipped", reference=event.subject, type=event.type, reason=plan.reason
            )
            return
        await self._dispatcher.deliver(plan)

    async def _bounced(self, event: CloudEvent[Any], data: DocumentAdded) -> None:
        """A bounce of our email for this complaint: fall back to SMS, else a letter."""
        contact = await self._ledger.contact(data.reference)
        sent = await self._ledger.latest_email(data.reference)
        if contact is None or sent is None:
            log.info("notifier.bounce_unmatched", reference=data.reference)
            return
        others = [route for route in routes(contact) if route[0] != Medium.EMAIL]
        bounced = PlannedNotification(
            notification_id=sent.notification_id,
            reference=data.reference,
            purpose=Purpose(sent.purpose),
            medium=Medium.EMAIL,
            recipient=sent.recipient,
            language=contact.language,
            values={**sent.values, "email_unverified": False},
            fallbacks=tuple(others),
            trigger_id=f"{sent.notification_id}\nbounce",
        )
        await self._dispatcher.bounced(bounced, "the email bounced (delivery status notification)")

    async def _requested_elsewhere(
        self, event: CloudEvent[Any], data: NotificationRequested
    ) -> None:
        """A ``notification.requested`` another service published (a new validation link)."""
        if data.purpose != Purpose.EMAIL_VERIFICATION or data.medium != Medium.EMAIL:
            return
        if await self._ledger.outcome(data.notification_id) is not None:
            return  # one of ours, or already handled
        planned = PlannedNotification(
            notification_id=data.notification_id,
            reference=data.reference,
            purpose=data.purpose,
            medium=data.medium,
            recipient=data.recipient,
            language=data.language,
            values={"reference": data.reference},
            trigger_id=event.id,
            requested_elsewhere=True,
        )
        await self._dispatcher.deliver(planned)


# what ``on_event`` acts on; the rest (most of notifications.v1: our own sent/failed events)
# is skipped after reading its type alone
HANDLED_TYPES = frozenset(
    {
        "complaint.received",
        "complaint.status_changed",
        "complaint.document_added",
        "notification.requested",
    }
)


def _event(record: Record) -> CloudEvent[Any] | None:
    try:
        raw = record.value or b""
        return parse_event(raw) if event_type(raw) in HANDLED_TYPES else None
    except ValueError as exc:
        log.warning(
            "notifier.unreadable_event",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(exc)[:300],
        )
        return None


def notifier_consumer(bootstrap: str, group_id: str, client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topics.COMPLAINTS,
        topics.NOTIFICATIONS,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=f"{client_id}-notifier",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=30 * 60 * 1000,
    )


__all__ = ["NotifierService", "notification_id", "notifier_consumer"]
