"""The notifier service in the test process, on the real broker, with its own consumer group.

Other tests write to the same ``complaints.v1``; each notifier here gets a fresh group whose
offsets start at the current end of the topics, so it handles only what its test publishes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from gateway.components import Components
from gateway.events import topics
from gateway.events.common import Channel
from gateway.events.complaint import ComplaintReceived
from gateway.events.envelope import CloudEvent, make_event
from gateway.notifier.assembly import notifier_service
from gateway.reference import reference_for
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.consumer import partition_numbers
from tests.support.kafka import free_port
from tests.support.services import running_service, with_overrides


async def start_group_at_end(bootstrap: str, group_id: str) -> None:
    """Commit the current end offsets of the notifier's topics for a new consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, number)
            for topic in (topics.COMPLAINTS, topics.NOTIFICATIONS)
            for number in await partition_numbers(bootstrap, topic)
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


async def notifier_settings(
    kafka: KafkaSettings, data_dir: Path, **overrides: Any
) -> GatewaySettings:
    group_id = f"notifier-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka.bootstrap, group_id)
    values: dict[str, Any] = {
        "kafka": kafka,
        "data_dir": data_dir,
        "http": {"port": free_port()},
        "public_url": "https://plaintes.example.org",
        "notifier": {"group_id": group_id, "retry_base_s": 0.05, "retry_max_s": 0.5},
    }
    return with_overrides(values, overrides)


@contextlib.asynccontextmanager
async def running_notifier(settings: GatewaySettings) -> AsyncIterator[Components]:
    async with running_service(settings, notifier_service) as components:
        yield components


def complaint_event(key: str | None = None, **person: Any) -> CloudEvent[Any]:
    """A new ``complaint.received`` from a web form, with the contacts given."""
    key = key or f"webform:notifier-test:{uuid.uuid4()}"
    reference = reference_for(key, "PL")
    complainant = {"name": "Marie Tremblay", "email": "marie@example.org", **person}
    complaint = ComplaintReceived.model_validate(
        {
            "reference": reference,
            "channel": Channel.WEBFORM,
            "received_at": datetime.now(UTC),
            "kind": "complaint",
            "language": "fr",
            "body": "Ma carte n'est jamais arrivée.",
            "complainant": complainant,
            "source_message": {"id": key},
            "due": {"acknowledge_by": "2026-11-27", "respond_by": "2026-12-23", "policy": "ramq"},
        }
    )
    return make_event(complaint, source_key=key, source="urn:intake-gateway:webform:test")
