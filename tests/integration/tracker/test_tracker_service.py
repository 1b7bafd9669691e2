"""The tracker on a real broker: a synthetic stream folded once through redelivery, a restart and
poisoned records (each to the DLQ, keyed ``tracker``), and a rebuild from the topics giving the
same state, in the test process and through ``intake-gateway tracker rebuild``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from gateway.events import topics
from gateway.events.envelope import CloudEvent, make_event
from gateway.events.erasure import ComplaintErased
from gateway.events.notification import Medium
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from gateway.store.tracker import TrackedComplaint
from gateway.tracker.erasures import ErasedComplaints
from gateway.tracker.rebuild import rebuild
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.consumer import TopicReader
from tests.support.tracker import (
    acknowledged,
    document,
    embedded_tracker,
    feedback,
    local,
    received,
    reference,
    running_tracker,
    status,
    tracker_settings,
    wait_for,
)

pytestmark = pytest.mark.integration

FOLD = ComplaintFold(BUILTIN_POLICIES)


def stream(run: str) -> dict[str, list[CloudEvent[Any]]]:
    """Three complaints of this run: across the Saint-Jean (RAMQ), the Ascension (France), and
    Christmas into the new year (RAMQ), acknowledged in time or a day late, answered or not."""
    a, b, c = f"{run}-a", f"{run}-b", f"{run}-c"
    return {
        a: [
            received(a, local("ramq", 2026, 6, 23, 10)),
            acknowledged(a, local("ramq", 2026, 6, 26, 16), Medium.EMAIL),
            status(a, "in_progress", local("ramq", 2026, 6, 30, 9), "Dossier attribué."),
        ],
        b: [
            received(b, local("fr-marianne", 2026, 5, 13, 10), policy="fr-marianne"),
            acknowledged(b, local("fr-marianne", 2026, 5, 19, 9), Medium.SMS),
            document(b, local("fr-marianne", 2026, 5, 20, 9)),
        ],
        c: [
            received(c, local("ramq", 2026, 12, 23, 10), flags=("needs_review",)),
            acknowledged(c, local("ramq", 2026, 12, 28, 9), Medium.LETTER),
        ],
    }


def expected(events: list[CloudEvent[Any]]) -> TrackedComplaint:
    complaint = None
    for event in events:
        entry = entry_of(event)
        assert entry is not None
        complaint = FOLD(complaint, entry)
    assert complaint is not None
    return complaint


async def publish(publisher: KafkaPublisher, events: list[CloudEvent[Any]]) -> None:
    for event in events:
        await publisher.publish(event)


async def test_given_a_stream_redelivered_poisoned_and_a_restart_then_each_event_counts_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = await tracker_settings(kafka_settings, tmp_path)
    lives = stream(tmp_path.name)
    a, _b, c = list(lives)
    dlq = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await dlq.mark()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap)
    await producer.start()
    try:
        async with running_tracker(settings) as components:
            store = components.backend.tracker
            for events in lives.values():
                await publish(components.publisher, events)
            await publish(components.publisher, lives[a])  # redelivered (same ids)
            await producer.send_and_wait(topics.COMPLAINTS, b"\xff not json", key=b"poison")
            late = document(a, local("ramq", 2026, 7, 2, 9))
            await components.publisher.publish(late)  # after the poisoned record
            for name, events in lives.items():
                want = expected(events + ([late] if name == a else []))
                await wait_for(store, lambda found, want=want: found == want, reference(name))
        answer = status(c, "answered", local("ramq", 2027, 1, 25, 9), "Votre carte est partie.")
        rated = feedback(c, 3, local("ramq", 2027, 1, 26, 9))
        async with KafkaPublisher(kafka_settings) as publisher:  # while the tracker is stopped
            await publish(publisher, [answer, rated, *lives[c]])
        async with running_tracker(settings) as components:
            want = expected([*lives[c], answer, rated])
            found = await wait_for(
                components.backend.tracker, lambda found: found == want, reference(c)
            )
            assert await components.backend.tracker.complaint(reference(a)) == expected(
                [*lives[a], late]
            )
            rejected = [json.loads(record.value) for record in await dlq.read(1)]
            kept = [await components.backend.dlq.get(r["id"]) for r in rejected]
    finally:
        await producer.stop()
    assert found is not None
    assert (found.answered_in_time, found.answer_delay, found.complete) == (False, 21, False)
    assert found.documents == 0
    poisoned = [r for r in rejected if r["data"]["channel"] == "tracker"]
    assert [r["data"]["reason_code"] for r in poisoned] == ["unreadable_event"]
    assert poisoned[0]["data"]["source_message"]["uri"].startswith("kafka://complaints.v1/")
    # kept in the office's queue too, to look at and dismiss
    assert [(r.channel, r.reason_code) if r else None for r in kept] == [
        ("tracker", "unreadable_event")
    ]


async def test_a_rebuild_from_the_topics_gives_the_same_state(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = await tracker_settings(kafka_settings, tmp_path)
    lives = stream(tmp_path.name)
    async with running_tracker(settings) as components:
        store = components.backend.tracker
        for events in lives.values():
            await publish(components.publisher, events)
        for name, events in lives.items():
            want = expected(events)
            await wait_for(store, lambda found, want=want: found == want, reference(name))
        before = {name: await store.complaint(reference(name)) for name in lives}
        done = await rebuild(kafka_settings, store, FOLD)
        after = {name: await store.complaint(reference(name)) for name in lives}
        timeline = await store.timeline(reference(next(iter(lives))))
    assert after == before
    assert done.records >= sum(map(len, lives.values()))
    assert len(timeline) == 3


async def test_the_rebuild_command_rebuilds_the_embedded_store(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    lives = stream(tmp_path.name)
    async with KafkaPublisher(kafka_settings) as publisher:
        for events in lives.values():
            await publish(publisher, events)
    async with embedded_tracker(tmp_path) as store:
        first = lives[next(iter(lives))]
        await store.apply([entry for entry in map(entry_of, first) if entry], FOLD)
    environment = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "tracker", "rebuild"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("rebuilt\trecords="), done.stdout
    async with embedded_tracker(tmp_path) as store:
        for name, events in lives.items():
            assert await store.complaint(reference(name)) == expected(events), name


def erased_entries() -> float:
    """Entries the tracker of this process left out as of erased complaints."""
    found = REGISTRY.get_sample_value("gateway_tracker_events_total", {"outcome": "erased"})
    return found or 0.0


async def until_left_out(before: float, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while erased_entries() == before:
        assert asyncio.get_running_loop().time() < deadline, "no entry left out"
        await asyncio.sleep(0.1)


def erased(name: str, at: datetime) -> CloudEvent[Any]:
    return make_event(
        ComplaintErased(reference=reference(name), erased_at=at),
        source_key=f"erasure:{reference(name)}",
        source="urn:intake-gateway:test",
        time=at,
    )


async def test_an_erased_complaint_stays_out_of_the_tracker_live_and_in_a_rebuild(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN complaints folded WHEN ``complaint.erased`` comes for one (its rows still there, as
    when an event was folded between the erasure's deletion and its event) THEN the tracker
    forgets it; a late rating of it is not folded; a rebuild from the topics, where its events
    still are, leaves it out and gives the others as they were."""
    settings = await tracker_settings(kafka_settings, tmp_path)
    lives = stream(tmp_path.name)
    a, b, _c = list(lives)
    async with running_tracker(settings) as components:
        store, backend = components.backend.tracker, components.backend
        for events in lives.values():
            await publish(components.publisher, events)
        for name, events in lives.items():
            want = expected(events)
            await wait_for(store, lambda found, want=want: found == want, reference(name))
        now = datetime.now(UTC)
        await components.publisher.publish(erased(a, now))
        await wait_for(store, lambda found: found is None, reference(a))
        assert await store.timeline(reference(a)) == []
        await backend.privacy.record_erasure(reference(a), now)
        left_out = erased_entries()
        await components.publisher.publish(feedback(a, 1, local("ramq", 2026, 7, 3, 9)))
        await until_left_out(left_out)  # the rating read, and left out
        assert await store.complaint(reference(a)) is None
        marker = document(b, local("fr-marianne", 2026, 5, 21, 9))
        await components.publisher.publish(marker)
        want_b = expected([*lives[b], marker])
        await wait_for(store, lambda found: found == want_b, reference(b))
        done = await rebuild(
            kafka_settings,
            store,
            FOLD,
            erasures=ErasedComplaints(backend.privacy, backend.complaints),
        )
        assert await store.complaint(reference(a)) is None
        assert await store.timeline(reference(a)) == []
        assert await store.complaint(reference(b)) == want_b
        for name in list(lives)[2:]:
            assert await store.complaint(reference(name)) == expected(lives[name])
    assert done.entries >= sum(map(len, lives.values())) - len(lives[a])
