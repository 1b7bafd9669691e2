"""The notifier service: its own consumer group on ``complaints.v1`` and ``notifications.v1``.

Each batch from Kafka is split by key (the reference): one complaint's events are handled in
order (within a batch and across batches), different complaints at once (up to
``GATEWAY_NOTIFIER_CONCURRENCY``). The next batches are read while one ends (up to
``BATCHES_IN_FLIGHT``). A batch's offsets are committed only when every notification of it and
of the batches before it has its outcome in the ledger; after a crash the batches come again
and the ledger skips what was already sent. When Kafka cannot take an event, the batches under
way end, nothing more is committed, and the consumer reads again from the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from gateway.errors import PublishError
from gateway.events.complaint import ComplaintReceived, DocumentAdded, Flag, StatusChanged
from gateway.events.envelope import CloudEvent, event_header, parse_event
from gateway.events.notification import Medium, NotificationRequested, Purpose
from gateway.kafka_security import group_consumer
from gateway.notifier.dispatch import SOURCE as OWN_SOURCE
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.final_answer import FinalAnswers
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
from gateway.notifier.unreadable import DATA_FAULTS, failed_record, unreadable_record
from gateway.settings import KafkaSettings

log = structlog.get_logger(__name__)

BATCHES_IN_FLIGHT = 4  # read ahead while earlier batches end; each commits after those before


class Record(Protocol):
    """What the notifier reads of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class _Batch:
    """Records read at once, their work under way, and the offsets to commit when it is done."""

    task: asyncio.Task[list[BaseException | None]]
    chains: list[asyncio.Task[None]]
    offsets: dict[TopicPartition, int]


class NotifierService:
    name = "notifier"

    def __init__(  # noqa: PLR0913 (keyword-only settings past the dispatcher and ledger)
        self,
        consumer: AIOKafkaConsumer,
        dispatcher: Dispatcher,
        ledger: NotificationLedger,
        *,
        concurrency: int = 32,
        acknowledgements: AcknowledgementRule | None = None,
        drain_s: float = 30.0,
        batch_size: int = 100,
        final_answers: FinalAnswers | None = None,
    ) -> None:
        self._consumer = consumer
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._slots = asyncio.Semaphore(concurrency)
        self._acknowledgements = acknowledgements or AcknowledgementRule()
        self._drain_s = drain_s
        self._batch_size = batch_size
        self._final_answers = final_answers
        self._batches: deque[_Batch] = deque()
        self._last_of_key: dict[bytes | None, asyncio.Task[None]] = {}
        self._stopping = False

    async def run(self) -> None:
        try:
            await self._consumer.start()
            try:
                await self._read_and_handle()
            except asyncio.CancelledError:
                await self._drain()
                raise
        finally:
            await self._consumer.stop()
            await self._dispatcher.close()

    async def _read_and_handle(self) -> None:
        """Reads the next batch while earlier ones are under way (up to ``BATCHES_IN_FLIGHT``),
        so a batch's slowest notifications do not leave the others idle; offsets are
        committed in the order the batches were read, each once its work and the work of those
        before it is done."""
        while True:
            await self._settle_finished()
            if len(self._batches) >= BATCHES_IN_FLIGHT:
                await asyncio.wait({self._batches[0].task})
                continue
            batches = await self._consumer.getmany(
                timeout_ms=100 if self._batches else 1000, max_records=self._batch_size
            )
            records = [record for batch in batches.values() for record in batch]
            if records:
                self._batches.append(self._start(records))

    def _start(self, records: Sequence[Record]) -> _Batch:
        by_key: dict[bytes | None, list[Record]] = defaultdict(list)
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            by_key[record.key].append(record)
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        chains = [self._chain(key, same_key) for key, same_key in by_key.items()]
        return _Batch(asyncio.ensure_future(_outcomes(chains)), chains, offsets)

    def _chain(self, key: bytes | None, records: list[Record]) -> asyncio.Task[None]:
        """One complaint's records, after those of the same complaint in earlier batches."""
        task = asyncio.create_task(self._handle_in_order(records, self._last_of_key.get(key)))
        self._last_of_key[key] = task
        task.add_done_callback(lambda done: self._forget_chain(key, done))
        return task

    def _forget_chain(self, key: bytes | None, task: asyncio.Task[None]) -> None:
        if self._last_of_key.get(key) is task:
            del self._last_of_key[key]

    async def _settle_finished(self) -> None:
        while self._batches and self._batches[0].task.done():
            await self._settle(self._batches.popleft())

    async def _settle(self, batch: _Batch) -> None:
        """Commit a finished batch; after a Kafka outage, read again what was not committed."""
        errors = [error for error in batch.task.result() if error is not None]
        unavailable = [error for error in errors if isinstance(error, PublishError)]
        if len(unavailable) < len(errors):
            raise next(error for error in errors if not isinstance(error, PublishError))
        if unavailable:
            log.warning("notifier.kafka_unavailable", error=str(unavailable[0]))
            await self._abandon_batches()
            await asyncio.sleep(5)
            await self._rewind()
            return
        try:
            await self._commit(batch)
        except (CommitFailedError, KafkaError) as exc:  # the batch comes again; the ledger dedupes
            log.warning("notifier.commit_failed", error=str(exc))

    async def _commit(self, batch: _Batch) -> None:
        """The batch's offsets of the partitions still ours (a rebalance may have moved some:
        their new reader starts from the last commit)."""
        assigned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in batch.offsets.items() if tp in assigned}
        if offsets:
            await self._consumer.commit(offsets)

    async def _abandon_batches(self) -> None:
        """Let the batches read after a failed one end, and commit none of them: they are read
        again from the last commit, and the ledger skips what they already sent."""
        if self._batches:
            await asyncio.wait([batch.task for batch in self._batches])
        self._batches.clear()

    async def _drain(self) -> None:
        """On shutdown, the notifications under way are finished (sends recorded) within
        ``drain_s``: a message cut mid-transaction could arrive without being recorded. Events
        not begun are left for the next start; the batches done are committed."""
        self._stopping = True
        if not self._batches:
            return
        log.info("notifier.draining", within_s=self._drain_s, batches=len(self._batches))
        tasks = [batch.task for batch in self._batches]
        _, late = await asyncio.wait(tasks, timeout=self._drain_s)
        if late:
            log.warning("notifier.drain_timeout", batches=len(late))
        while self._batches and self._batches[0].task.done():
            batch = self._batches.popleft()
            if all(error is None for error in batch.task.result()):
                with contextlib.suppress(CommitFailedError, KafkaError):
                    await self._commit(batch)
        for batch in self._batches:
            for chain in batch.chains:
                chain.cancel()

    async def _rewind(self) -> None:
        """Read the uncommitted records again (nothing after the last commit is lost)."""
        for partition in self._consumer.assignment():
            committed = await self._consumer.committed(partition)
            if committed is None:
                await self._consumer.seek_to_beginning(partition)
            else:
                self._consumer.seek(partition, committed)

    async def handle(self, records: Sequence[Record]) -> None:
        """Every notification these records call for, one complaint's in order (no commit)."""
        errors = [error for error in await self._start(records).task if error is not None]
        if errors:
            raise errors[0]

    async def _handle_in_order(
        self, records: list[Record], earlier: asyncio.Task[None] | None
    ) -> None:
        if earlier is not None:
            await asyncio.wait({earlier})
            if not earlier.cancelled() and earlier.exception() is not None:
                msg = "an earlier event of this complaint is not handled yet"
                raise PublishError(msg)  # this batch is read again with it
        async with self._slots:
            for record in records:
                if self._stopping:
                    raise _Stopped
                event = await self._readable(record)
                if event is not None:
                    await self._act_on(record, event)

    async def _act_on(self, record: Record, event: CloudEvent[Any]) -> None:
        """``on_event``; a fault of ours that this event's data reveals goes on the DLQ and the
        consumer goes on (a stop would meet the same event at every start). Kafka, the stores
        and the providers being unavailable are not such faults: their errors stop the batch,
        which is read again."""
        try:
            await self.on_event(event)
        except DATA_FAULTS as exc:
            log.exception(
                "notifier.event_failed", reference=event.subject, type=event.type, error=str(exc)
            )
            rejected = failed_record(record, event.subject or "", exc)
            await self._dispatcher.dead_letter(rejected, f"{event.id}\nfailed")

    async def _readable(self, record: Record) -> CloudEvent[Any] | None:
        """The event, or None: skipped (not ours to act on), or unreadable and reported on the
        DLQ. One poisoned record never stops the consumer; the DLQ has it before its offset is
        committed."""
        try:
            return _event(record)
        except ValueError as exc:
            rejected = unreadable_record(record, exc)
            log.warning(
                "notifier.unreadable_event",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason_code=rejected.reason_code,
                error=str(exc)[:300],
            )
            await self._dispatcher.dead_letter(rejected, rejected.source_message.id)
            return None

    async def on_event(self, event: CloudEvent[Any]) -> None:
        data = event.data
        if isinstance(data, ComplaintReceived):
            await self._ledger.remember_contact(contact_of(data))
            await self._run(self._acknowledgements.plan(event, datetime.now(UTC)), event)
        elif isinstance(data, StatusChanged):
            contact = await self._ledger.contact(data.reference)
            follows = await self._ledger.acknowledgement_message_id(data.reference)
            final = await self._final_answers.values(data) if self._final_answers else {}
            await self._run(plan_status_update(event, contact, follows, final), event)
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
        """A ``notification.requested`` another service published (a new validation link).
        Our own come back too and are skipped unread: one whose send did not begin (the process
        stopped between the event and the ledger) is sent when its complaint's event is read
        again, not as a bare link."""
        if data.purpose != Purpose.EMAIL_VERIFICATION or data.medium != Medium.EMAIL:
            return
        if await self._ledger.outcome(data.notification_id) is not None:
            return  # already handled (its event read again)
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


# what ``on_event`` acts on; the rest, and our own events (most of notifications.v1), is skipped
# after reading the type and source alone
HANDLED_TYPES = frozenset(
    {
        "complaint.received",
        "complaint.status_changed",
        "complaint.document_added",
        "notification.requested",
    }
)


class _Stopped(Exception):
    """The service is stopping: this event is left for the next start."""


async def _outcomes(chains: list[asyncio.Task[None]]) -> list[BaseException | None]:
    """What became of each chain (None: done), once all ended."""
    if chains:
        await asyncio.wait(chains)
    return [None if chain.cancelled() else chain.exception() for chain in chains]


def _event(record: Record) -> CloudEvent[Any] | None:
    """The event, None when it is not one to act on; ``ValueError`` when unreadable. Pydantic's
    JSON parser bounds its own nesting (it refuses past 200 levels, no recursion error)."""
    raw = record.value or b""
    header = event_header(raw)
    if header.type not in HANDLED_TYPES or header.source == OWN_SOURCE:
        return None  # our own notification events come back on notifications.v1
    return parse_event(raw, header.type)


def notifier_consumer(settings: KafkaSettings, group_id: str) -> AIOKafkaConsumer:
    return group_consumer(settings, group_id, "notifier")


__all__ = ["NotifierService", "notification_id", "notifier_consumer"]
