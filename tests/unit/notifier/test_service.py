"""The notifier service's reading of records: which it acts on, and in what order."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from gateway.events.envelope import CloudEvent, parse_event
from gateway.events.notification import Medium, Purpose
from gateway.notifier import OutgoingMessage
from gateway.notifier.dispatch import SOURCE
from gateway.notifier.service import NotifierService
from gateway.store.sqlite_ledger import SqliteLedger
from tests.conftest import FIXTURES
from tests.unit.notifier.conftest import ComplaintFactory
from tests.unit.notifier.test_dispatch import RecordingPublisher, ScriptedSender, dispatcher


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def record(event: CloudEvent[Any], offset: int = 0) -> FakeRecord:
    topic = "notifications.v1" if event.type.startswith("notification.") else "complaints.v1"
    value = event.__pydantic_serializer__.to_json(event)
    return FakeRecord(topic, 0, offset, event.subject.encode(), value)


def fixture_event(name: str, **envelope: Any) -> CloudEvent[Any]:
    raw = json.loads((FIXTURES / f"events/v1/{name}.json").read_text())
    raw.update(envelope)
    return parse_event(json.dumps(raw))


def link_requested(source: str) -> CloudEvent[Any]:
    """A ``notification.requested`` for a new validation link, as published by ``source``."""
    event = fixture_event("notification.requested", source=source)
    data = event.data.model_copy(update={"purpose": Purpose.EMAIL_VERIFICATION})
    return event.model_copy(update={"data": data})


def service(ledger: SqliteLedger, *senders: Any) -> NotifierService:
    notifier = dispatcher(ledger, RecordingPublisher(), *senders)
    return NotifierService(None, notifier, ledger)  # no consumer: handle() alone


async def test_our_own_link_request_read_back_is_not_sent_again_as_a_bare_link(
    ledger: SqliteLedger,
) -> None:
    """The notifier reads its own ``notification.requested`` back on notifications.v1; one whose
    send had not begun (stopped between the event and the ledger) is sent with its complaint,
    not a second time as a bare link."""
    email = ScriptedSender(Medium.EMAIL)
    await service(ledger, email).handle([record(link_requested(SOURCE))])
    assert email.sent == []


async def test_a_link_request_of_the_web_service_is_sent(ledger: SqliteLedger) -> None:
    email = ScriptedSender(Medium.EMAIL)
    await service(ledger, email).handle([record(link_requested("urn:intake-gateway"))])
    assert [message.recipient for message in email.sent] == ["marie.tremblay@example.org"]


class GatedSender(ScriptedSender):
    """Holds each message until ``gate`` opens."""

    def __init__(self, medium: Medium) -> None:
        super().__init__(medium)
        self.gate = asyncio.Event()

    async def send(self, message: OutgoingMessage) -> str:
        await self.gate.wait()
        return await super().send(message)


async def test_a_complaints_events_in_two_batches_are_handled_in_their_order(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    """The next batch is read while one is under way: a status change in it waits for the
    acknowledgement of the same complaint in the batch before (else it found no contact)."""
    email = GatedSender(Medium.EMAIL)
    notifier = service(ledger, email)
    first = notifier._start([record(complaint(), offset=1)])
    second = notifier._start([record(fixture_event("complaint.status_changed"), offset=2)])
    await asyncio.sleep(0.05)
    email.gate.set()
    assert await first.task == [None]
    assert await second.task == [None]
    subjects = [message.content.subject for message in email.sent]
    assert len(subjects) == 2
    assert "transmis" not in subjects[0]
    assert "transmis à l'organisme compétent" in subjects[1]


class CommittingConsumer:
    """What the service asks of its consumer when it commits a batch."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


async def test_a_batch_commits_the_next_offset_of_each_partition_still_assigned(
    ledger: SqliteLedger,
) -> None:
    """After a rebalance moved a partition away, its offsets are left to its new reader (a
    commit naming it is refused whole, which left the others uncommitted too)."""
    kept = TopicPartition("notifications.v1", 0)  # partition 1 moved away
    consumer = CommittingConsumer(kept)
    notifier = NotifierService(
        consumer,  # a stand-in: assignment() and commit() alone
        dispatcher(ledger, RecordingPublisher(), ScriptedSender(Medium.EMAIL)),
        ledger,
    )
    ours = record(link_requested(SOURCE))  # skipped unread: nothing to send
    records = [
        FakeRecord(ours.topic, 0, 7, ours.key, ours.value),
        FakeRecord(ours.topic, 0, 9, ours.key, ours.value),
        FakeRecord(ours.topic, 1, 4, ours.key, ours.value),
    ]
    batch = notifier._start(records)
    await batch.task
    await notifier._settle(batch)
    assert consumer.commits == [{kept: 10}]
