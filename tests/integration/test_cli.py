"""The command line against a real broker, as an operator uses it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import pytest

from gateway.events import topics
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from tests.integration.test_publisher import complaint

pytestmark = pytest.mark.integration


async def cli(bootstrap: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "GATEWAY_KAFKA_BOOTSTRAP": bootstrap}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_topics_create_is_idempotent_and_reports_every_topic(
    kafka_settings: KafkaSettings,
) -> None:
    for _ in range(2):
        code, out, _ = await cli(kafka_settings.bootstrap, "topics", "create")
        assert code == 0
        lines = [line.split("\t") for line in out.splitlines()]
        assert [line[0] for line in lines] == list(topics.ALL)
        assert all(line[1] == "exists" for line in lines)


async def test_tail_prints_published_events_one_json_per_line(
    kafka_settings: KafkaSettings,
) -> None:
    event = complaint(f"webform:tail-{time.time_ns()}")
    async with KafkaPublisher(kafka_settings) as publisher:
        await publisher.publish(event)
    code, out, _ = await cli(
        kafka_settings.bootstrap, "tail", "--from-beginning", "--idle-timeout", "3"
    )
    assert code == 0
    # only our line is parsed: other tests publish poisoned records on purpose (JSON nested
    # too deep for json.loads, garbage), which tail prints as they are
    ours = [json.loads(line) for line in out.splitlines() if event.id in line]
    assert [entry["id"] for entry in ours] == [event.id]
    assert ours[0]["specversion"] == "1.0"


async def test_tail_max_events_prints_that_many_even_when_one_batch_holds_more(
    kafka_settings: KafkaSettings,
) -> None:
    async with KafkaPublisher(kafka_settings) as publisher:
        for number in range(3):
            await publisher.publish(complaint(f"webform:tail-max-{number}-{time.time_ns()}"))
    code, out, _ = await cli(
        kafka_settings.bootstrap, "tail", "--from-beginning", "--max-events", "2"
    )
    assert code == 0
    assert len(out.splitlines()) == 2


async def test_given_no_broker_then_topics_create_fails_with_a_clear_message() -> None:
    code, _, err = await cli("127.0.0.1:1", "topics", "create")
    assert code == 3
    assert "127.0.0.1:1" in err
