"""Poisoned records: JSON nested deep and wide, or not JSON at all, go to the DLQ with a clear
reason, before their batch is committed, and the consumer goes on with the next record."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import PublishError
from gateway.events import topics
from gateway.events.envelope import CloudEvent
from gateway.events.notification import Medium
from gateway.notifier.service import NotifierService
from gateway.publisher import route
from gateway.store.sqlite_ledger import SqliteLedger
from tests.support.deep import nested_values
from tests.unit.notifier.conftest import ComplaintFactory
from tests.unit.notifier.test_dispatch import RecordingPublisher, ScriptedSender, dispatcher
from tests.unit.notifier.test_service import FakeRecord, record

PARTITION = TopicPartition(topics.COMPLAINTS, 0)


class OrderedConsumer:
    """Commits recorded in the same log as the publisher's events: which came first."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append(f"commit {offsets[PARTITION]}")


class OrderedPublisher(RecordingPublisher):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def publish(self, event: CloudEvent[Any]) -> None:
        await super().publish(event)
        self.log.append(event.type)


@st.composite
def poisoned_values(draw: st.DrawFn) -> bytes:
    """A deep value as the whole record, or as the ``data`` of an envelope of a handled type."""
    value, _ = draw(nested_values(max_depth=20_000))
    if draw(st.booleans()):
        return value
    kind = draw(st.sampled_from(["complaint.received", "complaint.status_changed"]))
    return b'{"specversion": "1.0", "type": "%s", "source": "x", "data": %s}' % (
        kind.encode(),
        value,
    )


@given(poisoned_values())
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_a_record_nested_too_deep_goes_to_the_dlq_and_the_next_one_is_handled(
    complaint: ComplaintFactory, poisoned: bytes
) -> None:
    log: list[str] = []
    ledger = SqliteLedger(None)
    email = ScriptedSender(Medium.EMAIL)
    publisher = OrderedPublisher(log)
    notifier = NotifierService(
        OrderedConsumer(log),  # type: ignore[arg-type]
        dispatcher(ledger, publisher, email),
        ledger,
    )
    good = record(complaint(), offset=2)
    poison = FakeRecord(topics.COMPLAINTS, 0, 1, good.key, poisoned)
    try:
        batch = notifier._start([poison, good])
        assert await batch.task == [None]
        await notifier._settle(batch)
    finally:
        await ledger.close()
    dead = [event for event in publisher.events if event.type == "intake.rejected"]
    assert len(dead) == 1
    assert dead[0].data.reason_code == "too_deep"
    assert "64" in dead[0].data.reason
    assert dead[0].data.source_message.uri == "kafka://complaints.v1/0/1"
    assert route(dead[0]) == (topics.DLQ, "notifier")
    assert len(email.sent) == 1  # the complaint after it was acknowledged
    assert log.index("intake.rejected") < log.index("commit 3")


@pytest.mark.parametrize("value", [b"", b"not json", b'{"type": "complaint.received"}'])
async def test_a_record_that_is_no_readable_event_goes_to_the_dlq_as_unreadable(
    ledger: SqliteLedger, value: bytes
) -> None:
    publisher = RecordingPublisher()
    notifier = NotifierService(None, dispatcher(ledger, publisher), ledger)  # type: ignore[arg-type]
    await notifier.handle([FakeRecord(topics.COMPLAINTS, 3, 41, b"PL-1", value)])
    [dead] = publisher.events
    assert dead.data.reason_code == "unreadable_event"
    assert dead.data.details == {"topic": "complaints.v1", "partition": "3", "offset": "41"}


async def test_the_same_poisoned_record_read_again_gives_the_same_dlq_event_id(
    ledger: SqliteLedger,
) -> None:
    """After a rewind the record comes again: consumers of the DLQ recognise the repeat."""
    publisher = RecordingPublisher()
    notifier = NotifierService(None, dispatcher(ledger, publisher), ledger)  # type: ignore[arg-type]
    poison = FakeRecord(topics.COMPLAINTS, 0, 5, b"PL-1", b"[" * 5000)
    await notifier.handle([poison])
    await notifier.handle([poison])
    first, second = publisher.events
    assert first.id == second.id


class UnavailablePublisher(RecordingPublisher):
    async def publish(self, event: CloudEvent[Any]) -> None:
        raise PublishError("Kafka unavailable")


async def test_when_the_dlq_cannot_take_a_poisoned_record_its_batch_is_not_done(
    ledger: SqliteLedger,
) -> None:
    """Nothing is committed before Kafka has it: the batch ends with the publisher's error,
    which the service answers by reading again from the last commit."""
    notifier = NotifierService(None, dispatcher(ledger, UnavailablePublisher()), ledger)  # type: ignore[arg-type]
    batch = notifier._start([FakeRecord(topics.COMPLAINTS, 0, 5, b"PL-1", b"[" * 5000)])
    [outcome] = await batch.task
    assert isinstance(outcome, PublishError)


async def test_an_event_the_notifier_fails_on_goes_to_the_dlq_and_the_next_one_is_handled(
    complaint: ComplaintFactory,
) -> None:
    """A fault of ours that one event's data reveals (here the sender cannot encode an
    address) is put on the DLQ with the error, before the batch is committed, and the other
    complaints are acknowledged: the service does not stop on it at every start."""
    log: list[str] = []
    ledger = SqliteLedger(None)
    fault = UnicodeEncodeError("ascii", "côté", 1, 2, "ordinal not in range(128)")
    email = ScriptedSender(Medium.EMAIL, fault)
    publisher = OrderedPublisher(log)
    notifier = NotifierService(
        OrderedConsumer(log),  # type: ignore[arg-type]
        dispatcher(ledger, publisher, email),
        ledger,
    )
    failing = complaint(event_id="failing-one", reference="PL-AAAA-AAAA-AAAA")
    good = complaint(event_id="good-one", reference="PL-BBBB-BBBB-BBBB")
    try:
        batch = notifier._start([record(failing, offset=1), record(good, offset=2)])
        assert await batch.task == [None]  # one chain: the fixture's events share a subject
        await notifier._settle(batch)
    finally:
        await ledger.close()
    [dead] = [event for event in publisher.events if event.type == "intake.rejected"]
    assert dead.data.reason_code == "notification_failed"
    assert "UnicodeEncodeError" in dead.data.reason
    assert dead.data.details["reference"] == failing.subject
    assert dead.data.source_message.uri == "kafka://complaints.v1/0/1"
    assert [message.reference for message in email.sent] == ["PL-BBBB-BBBB-BBBB"]
    assert log.index("intake.rejected") < log.index("commit 3")
