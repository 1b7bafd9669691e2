"""The tracker as a user runs it (``intake-gateway run --only tracker``), killed with SIGKILL while
it folds: after a restart every complaint stands as if nothing happened (offsets are committed
after the state, and what is folded twice is recognised by its event id)."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.events.envelope import CloudEvent
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from gateway.store.tracker import TrackedComplaint, TrackerStore
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.notifier import start_group_at_end
from tests.support.tracker import (
    acknowledged,
    embedded_tracker,
    local,
    received,
    reference,
    status,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

COMPLAINTS = 1000
FOLD = ComplaintFold(BUILTIN_POLICIES)


def start_tracker(bootstrap: str, data_dir: Path, group: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_TRACKER_GROUP_ID": group,
        "GATEWAY_TRACKER_BATCH_SIZE": "10",  # many commits: a kill lands between two
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--only", "tracker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def life(name: str) -> list[CloudEvent[Any]]:
    return [
        received(name, local("ramq", 2026, 12, 23, 10)),
        acknowledged(name, local("ramq", 2026, 12, 28, 9)),
        status(name, "in_progress", local("ramq", 2027, 1, 4, 9), "Dossier attribué."),
    ]


@functools.cache
def expected(name: str) -> TrackedComplaint:
    complaint = None
    for event in life(name):
        entry = entry_of(event)
        assert entry is not None
        complaint = FOLD(complaint, entry)
    assert complaint is not None
    return complaint


async def folded_count(store: TrackerStore, names: list[str]) -> int:
    """Complaints whose every event is folded (the two topics are read independently: a
    complaint's status may be in before its acknowledgement)."""
    found = [await store.complaint(reference(name)) for name in names]
    pairs = zip(names, found, strict=True)
    return sum(1 for name, complaint in pairs if complaint == expected(name))


async def until_folded(store: TrackerStore, names: list[str], count: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await folded_count(store, names) >= count:
                return
            await asyncio.sleep(0.01)


async def test_given_a_sigkill_mid_stream_then_a_restart_folds_every_event_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    group = f"tracker-process-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_settings.bootstrap, group)
    names = [f"{tmp_path.name}-{number}" for number in range(COMPLAINTS)]
    async with KafkaPublisher(kafka_settings) as publisher:
        for start in range(0, COMPLAINTS, 100):
            await asyncio.gather(
                *(
                    publisher.publish(event)
                    for name in names[start : start + 100]
                    for event in life(name)
                )
            )
    process = start_tracker(kafka_settings.bootstrap, tmp_path, group)
    try:
        async with embedded_tracker(tmp_path) as store:
            await until_folded(store, names, 1, timeout_s=90)
            process.kill()
            process.wait(timeout=30)
            killed_at = await folded_count(store, names)
            process = start_tracker(kafka_settings.bootstrap, tmp_path, group)
            await until_folded(store, names, COMPLAINTS, timeout_s=120)
            for name in names:
                assert await store.complaint(reference(name)) == expected(name), name
                assert len(await store.timeline(reference(name))) == 3
    finally:
        process.kill()
        process.wait(timeout=30)
    assert killed_at < COMPLAINTS  # the kill came mid-stream
