"""The publisher against a real Kafka broker: what a downstream consumer receives."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from gateway.admin import create_topics
from gateway.errors import KafkaUnavailable
from gateway.events import topics
from gateway.events.common import Channel, Person, SourceMessage
from gateway.events.complaint import ComplaintReceived, Kind
from gateway.events.envelope import CONTENT_TYPE, make_event
from gateway.publisher import KafkaPublisher
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from tests.conftest import REPO
from tests.support.consumer import TopicReader
from tests.support.kafka import LocalBroker, free_port

pytestmark = pytest.mark.integration


def complaint(source_key: str, body: str = "Ma carte n'est jamais arrivée.") -> Any:
    data = ComplaintReceived(
        reference=reference_for(source_key),
        channel=Channel.WEBFORM,
        received_at=datetime.now(UTC),
        kind=Kind.COMPLAINT,
        language="fr",
        body=body,
        complainant=Person(name="Marie Tremblay", email="marie@example.org"),
        source_message=SourceMessage(id=source_key),
    )
    return make_event(data, source_key=source_key, source="urn:intake-gateway:webform:test")


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))
    return loaded


async def test_given_a_complaint_when_published_then_a_consumer_reads_a_schema_valid_cloudevent(
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    event = complaint(f"webform:round-trip-{time.time_ns()}")
    async with KafkaPublisher(kafka_settings) as publisher:
        ack = await publisher.publish(event)
    assert ack.topic == topics.COMPLAINTS
    records = await reader.read(1)
    assert len(records) == 1
    record = records[0]
    assert record.key == event.subject.encode()
    assert dict(record.headers)["content-type"] == CONTENT_TYPE.encode()
    value = json.loads(record.value)
    jsonschema.Draft202012Validator(
        schema("complaint.received.v1.json"), format_checker=jsonschema.FormatChecker()
    ).validate(value)
    assert value["id"] == event.id
    assert value["subject"] == value["data"]["reference"] == event.subject
    assert (record.partition, record.offset) == (ack.partition, ack.offset)


async def test_given_many_events_of_one_complaint_then_they_arrive_in_order(
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    source_key = f"webform:ordered-{time.time_ns()}"
    bodies = [f"message {n}" for n in range(200)]
    async with KafkaPublisher(kafka_settings) as publisher:
        await asyncio.gather(*(publisher.publish(complaint(source_key, body)) for body in bodies))
    records = await reader.read(len(bodies))
    mine = [json.loads(r.value) for r in records if r.key == reference_for(source_key).encode()]
    assert [event["data"]["body"] for event in mine] == bodies
    assert len({r.partition for r in records if r.key == reference_for(source_key).encode()}) == 1


async def test_given_the_same_input_published_twice_then_same_id_and_reference(
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    source_key = f"email:<redelivered-{time.time_ns()}@example.org>"
    async with KafkaPublisher(kafka_settings) as publisher:
        await publisher.publish(complaint(source_key))
        await publisher.publish(complaint(source_key))
    values = [json.loads(r.value) for r in await reader.read(2)]
    assert len(values) == 2
    assert values[0]["id"] == values[1]["id"]
    assert values[0]["data"]["reference"] == values[1]["data"]["reference"]


async def test_given_no_broker_when_publishing_then_kafka_unavailable_within_the_bound() -> None:
    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_port()}", publish_timeout_s=3.0, request_timeout_s=2.0
    )
    started = time.monotonic()
    async with KafkaPublisher(settings) as publisher:
        with pytest.raises(KafkaUnavailable):
            await publisher.publish(complaint("webform:nobody-home"))
        assert not await publisher.is_ready()
    assert time.monotonic() - started < 10


@pytest.mark.fault
@pytest.mark.slow
async def test_given_the_broker_stops_and_returns_then_publish_fails_clearly_then_recovers(
    private_broker: LocalBroker,
) -> None:
    settings = KafkaSettings(
        bootstrap=private_broker.bootstrap, publish_timeout_s=5.0, request_timeout_s=3.0
    )
    await create_topics(settings)
    async with KafkaPublisher(settings) as publisher:
        await publisher.publish(complaint("webform:before-stop"))
        await asyncio.to_thread(private_broker.stop)
        started = time.monotonic()
        with pytest.raises(KafkaUnavailable):
            await publisher.publish(complaint("webform:while-down"))
        assert time.monotonic() - started < 8
        await asyncio.to_thread(private_broker.start)
        ack = await publisher.publish(complaint("webform:after-restart"))
    assert ack.topic == topics.COMPLAINTS
