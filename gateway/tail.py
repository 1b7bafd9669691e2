"""``intake-gateway tail``: print a topic's events, one JSON per line (a minimal consumer).

It joins no consumer group and commits nothing, so it never disturbs real consumers.
"""

from __future__ import annotations

import sys
from typing import TextIO

from aiokafka import AIOKafkaConsumer

from gateway.kafka_security import client_security, start_or_stop
from gateway.settings import KafkaSettings


async def tail(
    settings: KafkaSettings,
    topic: str,
    *,
    from_beginning: bool,
    max_events: int | None = None,
    idle_timeout_s: float | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print events until cancelled, ``max_events`` printed, or ``idle_timeout_s`` of silence."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        request_timeout_ms=int(settings.request_timeout_s * 1000),
        **client_security(settings),
    )
    await start_or_stop(consumer, settings.bootstrap)
    printed = 0
    try:
        while max_events is None or printed < max_events:
            batch = await consumer.getmany(timeout_ms=int((idle_timeout_s or 3600) * 1000))
            if not batch:
                if idle_timeout_s is not None:
                    break
                continue
            records = [record for records in batch.values() for record in records]
            if max_events is not None:  # a batch may hold more than are still wanted
                records = records[: max_events - printed]
            for record in records:
                out.write((record.value or b"").decode("utf-8", "replace") + "\n")
            printed += len(records)
            out.flush()
    finally:
        await consumer.stop()
    return printed
