"""Poisoned records on complaints.v1 (JSON nested deep and wide, garbage), read by the notifier
on a real broker: each goes to intake.dlq.v1 with its reason, the consumer goes on, and the
complaint published after them is acknowledged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gateway.events import topics
from gateway.settings import KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.deep import nest
from tests.support.notifier import complaint_event, notifier_settings, running_notifier
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

POISONED = [
    (b"[" * 50_000 + b"]" * 50_000, "too_deep"),
    (
        b'{"specversion": "1.0", "type": "complaint.received", "source": "x", "data": '
        + nest(1_500, ["{", "["], 3)
        + b"}",
        "too_deep",
    ),
    (b"\xff not json", "unreadable_event"),
]


async def test_given_poisoned_records_then_each_goes_to_the_dlq_and_the_next_one_is_handled(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    dlq = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await dlq.mark()
    event = complaint_event()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap)
    await producer.start()
    try:
        async with running_notifier(settings) as components:
            for value, _ in POISONED:  # same key: the same partition, before the complaint
                await producer.send_and_wait(topics.COMPLAINTS, value, key=event.subject.encode())
            await components.publisher.publish(event)
            [mail] = await smtp_server.wait_for(1)
            records = await dlq.read(len(POISONED))
            store = components.backend.dlq
            kept = [await store.get(json.loads(record.value)["id"]) for record in records]
            first = kept[0]
            assert first is not None
            assert await store.dismiss(first.id, "cli:test", "looked at: garbage")
    finally:
        await producer.stop()
    assert event.subject in mail["Subject"]
    rejected = [json.loads(record.value) for record in records]
    assert [r["data"]["reason_code"] for r in rejected] == [code for _, code in POISONED]
    assert {r["data"]["channel"] for r in rejected} == {"notifier"}
    assert all(
        r["data"]["source_message"]["uri"].startswith("kafka://complaints.v1/") for r in rejected
    )
    assert {record.key for record in records} == {b"notifier"}
    # kept in the office's queue too, to look at and dismiss (nothing stored to redrive)
    assert [record.reason_code if record else None for record in kept] == [
        code for _, code in POISONED
    ]
    assert all(record and record.channel == "notifier" for record in kept)
    assert all(record and (record.source_uri or "").startswith("kafka://") for record in kept)
