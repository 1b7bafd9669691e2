"""Topic administration: ``intake-gateway topics create`` (idempotent)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from gateway.errors import KafkaUnavailable
from gateway.events import topics
from gateway.kafka_security import client_security
from gateway.settings import KafkaSettings

NEVER = "-1"
ONE_YEAR_MS = str(365 * 24 * 3600 * 1000)

# complaints.v1 and the DLQ are the intake's record: kept until an operator decides otherwise.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    topics.COMPLAINTS: {"retention.ms": NEVER, "cleanup.policy": "delete"},
    topics.NOTIFICATIONS: {"retention.ms": ONE_YEAR_MS, "cleanup.policy": "delete"},
    topics.DLQ: {"retention.ms": NEVER, "cleanup.policy": "delete"},
}


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    created: bool


async def create_topics(settings: KafkaSettings) -> list[TopicState]:
    """Create the contract's topics that are missing; report every topic's partitions."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap,
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_security(settings),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in topics.ALL if name not in existing]
        if missing:
            await admin.create_topics([_new_topic(name, settings) for name in missing])
        partitions = await _partitions(admin, settings.request_timeout_s)
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailable(f"cannot administer topics at {settings.bootstrap}: {exc}") from exc
    finally:
        await admin.close()
    return [TopicState(name, partitions.get(name, 0), name in missing) for name in topics.ALL]


async def _partitions(admin: AIOKafkaAdminClient, timeout_s: float) -> dict[str, int]:
    """Each topic's partitions; a topic just created has none in the metadata until its leaders
    are elected (a fraction of a second): asked again until then, within ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(list(topics.ALL))
        partitions = {entry["topic"]: len(entry["partitions"]) for entry in described}
        if all(partitions.get(name) for name in topics.ALL):
            return partitions
        if asyncio.get_running_loop().time() > deadline:
            return partitions
        await asyncio.sleep(0.1)


def _new_topic(name: str, settings: KafkaSettings) -> NewTopic:
    return NewTopic(
        name=name,
        num_partitions=settings.topic_partitions,
        replication_factor=settings.replication_factor,
        topic_configs=TOPIC_CONFIGS[name],
    )
