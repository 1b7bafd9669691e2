"""A plain aiokafka consumer for the tests: what a downstream system would read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass
class TopicReader:
    """Reads the records written to a topic after ``mark()``."""

    bootstrap: str
    topic: str
    _start: dict[TopicPartition, int] | None = None

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        return consumer

    async def mark(self) -> None:
        consumer = await self._consumer()
        try:
            numbers = await partition_numbers(self.bootstrap, self.topic)
            partitions = [TopicPartition(self.topic, number) for number in numbers]
            self._start = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()

    async def mark_beginning(self) -> None:
        """Read from the first offset of every partition."""
        numbers = await partition_numbers(self.bootstrap, self.topic)
        self._start = {TopicPartition(self.topic, number): 0 for number in numbers}

    async def read(self, count: int, timeout_s: float = 30.0) -> list[ConsumerRecord[bytes, bytes]]:
        """At least ``count`` records written since ``mark()``, or all there are at the timeout."""
        assert self._start is not None, "call mark() first"
        consumer = await self._consumer()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            consumer.assign(list(self._start))
            for partition, offset in self._start.items():
                consumer.seek(partition, offset)
            async with asyncio.timeout(timeout_s):
                while len(records) < count:
                    batch = await consumer.getmany(timeout_ms=500)
                    for partition_records in batch.values():
                        records.extend(partition_records)
        except TimeoutError:
            pass
        finally:
            await consumer.stop()
        return records

    async def read_to_end(self, timeout_s: float = 30.0) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record from the mark to the end of each partition as it is now."""
        assert self._start is not None, "call mark() first"
        consumer = await self._consumer()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            consumer.assign(list(self._start))
            ends = await consumer.end_offsets(list(self._start))
            for partition, offset in self._start.items():
                consumer.seek(partition, offset)
            async with asyncio.timeout(timeout_s):
                while [p for p, end in ends.items() if await consumer.position(p) < end]:
                    batch = await consumer.getmany(timeout_ms=500)
                    for partition_records in batch.values():
                        records.extend(partition_records)
        finally:
            await consumer.stop()
        return records


async def partition_numbers(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(100):  # a topic just created takes a moment to appear in metadata
            described = await admin.describe_topics([topic])
            numbers = sorted(p["partition"] for p in described[0]["partitions"])
            if numbers:
                return numbers
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    raise AssertionError(f"topic {topic} has no partitions")
