"""The intake on a real broker: a raw input becomes a published complaint, or a DLQ record."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from gateway.channels.raw import RawMessage, Sender
from gateway.errors import InputRejected
from gateway.events import topics
from gateway.events.common import Channel
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from tests.support.consumer import TopicReader

pytestmark = pytest.mark.integration


def normalizer() -> ComplaintNormalizer:
    return ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))


async def test_given_an_email_then_a_normalised_complaint_is_on_the_topic(
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    key = f"email:<intake-{time.time_ns()}@example.org>"
    raw = RawMessage(
        channel=Channel.EMAIL,
        source_key=key,
        source_id=key.removeprefix("email:"),
        received_at=datetime(2026, 11, 20, 15, tzinfo=UTC),
        subject="Plainte",
        text="Je n'ai toujours pas reçu ma carte, c'est inacceptable.",
        sender=Sender(name="Marie Tremblay", email="marie@example.org"),
    )
    async with KafkaPublisher(kafka_settings) as publisher:
        event = await Intake(normalizer(), publisher).submit(raw)
    records = await reader.read(1)
    value = json.loads(records[0].value)
    assert value["id"] == event.id
    assert value["data"]["reference"] == reference_for(key)
    assert value["data"]["kind"] == "complaint"
    assert value["data"]["due"]["acknowledge_by"] == "2026-11-24"


async def test_given_an_input_that_cannot_be_a_complaint_then_a_dlq_record_says_why(
    kafka_settings: KafkaSettings,
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await reader.mark()
    raw = RawMessage(
        channel=Channel.WEBFORM,
        source_key=f"webform:test:{time.time_ns()}",
        source_id="idem-1",
        received_at=datetime.now(UTC),
        raw_uri="file:///var/lib/intake-gateway/objects/ab/cd/abcd",
        fields={"body": "Texte", "language": "français"},  # not an ISO 639-1 code
    )
    async with KafkaPublisher(kafka_settings) as publisher:
        with pytest.raises(InputRejected):
            await Intake(normalizer(), publisher).submit(raw)
    records = await reader.read(1)
    assert records[0].key == b"webform"
    value = json.loads(records[0].value)
    assert value["type"] == "intake.rejected"
    assert value["data"]["reason_code"] == "not_a_complaint"
    assert "language" in value["data"]["reason"]
    assert value["data"]["source_message"]["uri"] == raw.raw_uri
