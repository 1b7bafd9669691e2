"""The notifier as a user runs it (``intake-gateway run --only notifier``), stopped mid-batch.

SIGTERM: the batch under way is finished and recorded, so after a restart every complaint has
exactly one acknowledgement. SIGKILL: nothing is missing after a restart; a message the SMTP
server accepted in the instant before the kill, but the ledger had not yet recorded, goes again
(at-least-once: SMTP has no way to ask "did you already get this?"), and that copy carries the
same Message-ID, so a receiving system can drop it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from tests.support.notifier import complaint_event, start_group_at_end
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.integration, pytest.mark.fault, pytest.mark.slow]

COMPLAINTS = 300


def start_notifier(
    bootstrap: str, data_dir: Path, smtp: SmtpServer, group: str, **settings: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_SMTP_HOST": "127.0.0.1",
        "GATEWAY_SMTP_PORT": str(smtp.port),
        "GATEWAY_SMTP_FROM": "plaintes@ramq.example",
        "GATEWAY_NOTIFIER_GROUP_ID": group,
        "GATEWAY_PUBLIC_URL": "https://plaintes.example.org",
        # a killed notifier's claims are taken over this soon (the default: a minute)
        "GATEWAY_NOTIFIER_CLAIM_LEASE_S": "3",
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--only", "notifier"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def stop_mid_batch(
    kafka_settings: KafkaSettings, tmp_path: Path, how: signal.Signals
) -> tuple[collections.Counter[str], set[str]]:
    """Publish the complaints, stop the notifier with ``how`` once part of them went out,
    start it again, and return how many mails each reference got."""
    smtp = SmtpServer()
    smtp.sink.delay_s = 0.01
    smtp.start()
    group = f"notifier-kill-{how.name}-{os.getpid()}-{tmp_path.name}"
    await start_group_at_end(kafka_settings.bootstrap, group)
    events = [complaint_event() for _ in range(COMPLAINTS)]
    try:
        async with KafkaPublisher(kafka_settings) as publisher:
            await asyncio.gather(*(publisher.publish(event) for event in events))
        notifier = start_notifier(kafka_settings.bootstrap, tmp_path, smtp, group)
        await smtp.wait_for(COMPLAINTS // 4, timeout_s=60)
        notifier.send_signal(how)
        notifier.wait(timeout=60)
        assert len(smtp.messages) < COMPLAINTS, "the stop came too late to test anything"
        restarted = start_notifier(kafka_settings.bootstrap, tmp_path, smtp, group)
        try:
            await smtp.wait_for(COMPLAINTS, timeout_s=120)
            await asyncio.sleep(2)  # anything sent twice would arrive now
        finally:
            restarted.terminate()
            restarted.wait(timeout=60)
    finally:
        smtp.stop()
    message_ids: dict[str, set[str]] = collections.defaultdict(set)
    for mail in smtp.messages:
        message_ids[str(mail["X-Gateway-Reference"])].add(str(mail["Message-ID"]).strip())
    counts = collections.Counter(str(mail["X-Gateway-Reference"]) for mail in smtp.messages)
    assert all(len(ids) == 1 for ids in message_ids.values()), "a copy with another Message-ID"
    return counts, {event.subject for event in events}


async def test_given_sigterm_mid_batch_then_every_complaint_has_exactly_one_acknowledgement(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    counts, references = await stop_mid_batch(kafka_settings, tmp_path, signal.SIGTERM)
    assert set(counts) == references
    assert [reference for reference, count in counts.items() if count > 1] == []


async def test_given_sigkill_mid_batch_then_nothing_is_missing_and_copies_are_recognisable(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    counts, references = await stop_mid_batch(kafka_settings, tmp_path, signal.SIGKILL)
    assert set(counts) == references
    duplicates = sum(count - 1 for count in counts.values())
    print(f"SIGKILL: {duplicates} copies of {COMPLAINTS} acknowledgements")
    assert duplicates <= 8  # the sends whose outcome was not yet written at the kill


def acknowledgements(smtp: SmtpServer) -> tuple[collections.Counter[str], set[str]]:
    """How many mails each reference got, and the references whose copies differ (another
    Message-ID: a second notification, not a second copy of one)."""
    message_ids: dict[str, set[str]] = collections.defaultdict(set)
    for mail in smtp.messages:
        message_ids[str(mail["X-Gateway-Reference"])].add(str(mail["Message-ID"]).strip())
    counts = collections.Counter(str(mail["X-Gateway-Reference"]) for mail in smtp.messages)
    return counts, {reference for reference, ids in message_ids.items() if len(ids) > 1}


@pytest.mark.timeout(300)
async def test_two_notifiers_sharing_postgresql_one_killed_and_another_started(
    kafka_settings: KafkaSettings, tmp_path: Path, postgres_url: str
) -> None:
    """GIVEN two notifiers on two machines (their own data folders, one PostgreSQL) in one
    group and 500 complaints WHEN one joins mid-load (a rebalance), then one is SIGKILLed and a
    third started THEN every acknowledgement arrives; the rebalance costs no copy (a
    notification is claimed in the database before it is sent: the notifier given the same
    event waits for the other's outcome), and a copy exists only of a mail the SMTP server took
    in the instant before the kill, with its Message-ID."""
    smtp = SmtpServer()
    smtp.sink.delay_s = 0.01
    smtp.start()
    group = f"notifier-replicas-{os.getpid()}-{tmp_path.name}"
    await start_group_at_end(kafka_settings.bootstrap, group)
    events = [complaint_event() for _ in range(500)]
    shared = {"GATEWAY_STATE_URL": postgres_url}
    bootstrap = kafka_settings.bootstrap
    started: list[subprocess.Popen[bytes]] = []
    try:
        async with KafkaPublisher(kafka_settings) as publisher:
            await asyncio.gather(*(publisher.publish(event) for event in events))
        started.append(start_notifier(bootstrap, tmp_path / "a", smtp, group, **shared))
        await smtp.wait_for(60, timeout_s=60)
        started.append(start_notifier(bootstrap, tmp_path / "b", smtp, group, **shared))
        await smtp.wait_for(200, timeout_s=90)
        before_kill = collections.Counter(
            str(mail["X-Gateway-Reference"]) for mail in smtp.messages
        )
        started[0].send_signal(signal.SIGKILL)
        started[0].wait(timeout=30)
        started.append(start_notifier(bootstrap, tmp_path / "c", smtp, group, **shared))
        await smtp.wait_for(500, timeout_s=150)
        await asyncio.sleep(3)  # anything sent twice would arrive now
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)
        smtp.stop()
    counts, other_ids = acknowledgements(smtp)
    assert set(counts) == {event.subject for event in events}
    assert other_ids == set()
    assert [ref for ref, count in before_kill.items() if count > 1] == []  # the rebalance
    copies = sum(count - 1 for count in counts.values())
    print(f"two notifiers, one SIGKILLed: {copies} copies of 500 acknowledgements")
    assert copies <= 8  # the sends whose outcome was not yet written at the kill
