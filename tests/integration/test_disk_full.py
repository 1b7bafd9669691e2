"""The data folder's disk fills up (a small tmpfs mounted for the test), then space returns.

Web: a submission that cannot be stored whole gets a 503 saying the storage is full, and no
event; every event published has all its attachments on disk; once space returns, the same
submission (same Idempotency-Key) is accepted. Mail: the message stays in the inbox while the
disk is full and goes through once there is room again.

Mounting a tmpfs needs root (CI runs as root); elsewhere these tests are skipped, saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.channels.imap import ImapChannel
from gateway.errors import ClaimStoreFull
from gateway.events import topics
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from gateway.store.claims import FileClaimStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.consumer import TopicReader
from tests.support.dovecot import Dovecot, account, append, count, simple_mail
from tests.support.forms import signed_multipart
from tests.support.http import gateway_settings, running_gateway
from tests.support.objects import stored_bytes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.fault,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

URL = "/v1/webhooks/forms/contact-form"
FIELDS = {
    "name": "Marie Tremblay",
    "email": "marie@example.org",
    "body": "Voici les pièces de mon dossier, toujours sans réponse.",
}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (the state files take half of it); ``grow(small_disk)`` gives it room
    again."""
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    options = "size=2m,mode=0700"  # a data folder is the gateway's alone
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def grow(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m,mode=0700", str(mount_point)], check=True)


def submission(number: int) -> dict[str, Any]:
    scan = os.urandom(200 * 1024)  # incompressible, distinct: one new object each
    request = signed_multipart(FIELDS, [(f"piece-{number}.pdf", scan, "application/pdf")])
    request["sha256"] = hashlib.sha256(scan).hexdigest()
    return request


async def post(client: httpx.AsyncClient, request: dict[str, Any]) -> httpx.Response:
    return await client.post(URL, content=request["content"], headers=request["headers"])


async def test_a_full_disk_refuses_clearly_and_recovers_when_space_returns(
    small_disk: Path, kafka_settings: KafkaSettings
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    settings = gateway_settings(kafka_settings, small_disk, rate_per_client_per_minute=1000)
    accepted: list[dict[str, Any]] = []
    async with (
        running_gateway(settings) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        for number in range(20):
            request = submission(number)
            answer = await post(client, request)
            if answer.status_code != 202:
                break
            accepted.append({**answer.json(), "sha256": request["sha256"]})
        assert answer.status_code == 503, answer.text
        assert "storage is full" in answer.json()["detail"]
        assert answer.headers["retry-after"]
        refused = request
        assert accepted, "the disk was full before the first submission"
        grow(small_disk)
        retried = await post(client, refused)
        assert retried.status_code == 202, retried.text
        accepted.append({**retried.json(), "sha256": refused["sha256"]})
    # A write after the publish may be the one the full disk refused: the retry then publishes
    # the same event again (same id, which consumers recognise). Each accepted once at least.
    records = await reader.read(len(accepted) + 1, timeout_s=15)
    events = list({e["id"]: e for e in (json.loads(r.value) for r in records)}.values())
    assert sorted(e["id"] for e in events) == sorted(a["event_id"] for a in accepted)
    for event in events:  # whole, sealed, on the disk that was full
        (attachment,) = event["data"]["attachments"]
        assert len(await stored_bytes(settings, attachment["sha256"])) == 200 * 1024
    assert {e["data"]["attachments"][0]["sha256"] for e in events} == {
        a["sha256"] for a in accepted
    }
    # (small objects are written as unnamed files, which leave nothing behind: the folder of
    # named temp files may not even exist)
    incoming = small_disk / "incoming"
    assert not incoming.exists() or not list(incoming.iterdir()), "half-written files were left"


async def test_mail_waits_in_the_inbox_while_the_disk_is_full(
    small_disk: Path, dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    room = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (room - 8192))  # the disk is all but full
    attachment = os.urandom(300 * 1024).hex()  # about 600 KB: no room for it
    mail = simple_mail(f"<{uuid.uuid4()}@example.org>", "Plainte", f"Pièce : {attachment}")
    await append(dovecot, mail)
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        intake = Intake(
            ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None)), publisher
        )
        channel = ImapChannel(account(dovecot), intake, FileClaimStore(small_disk), state)
        with pytest.raises(ClaimStoreFull):
            await channel.drain()
        assert await count(dovecot, "INBOX") == 1  # not moved, not quarantined
        grow(small_disk)
        assert await channel.drain() == 1
    await state.close()
    assert (await count(dovecot, "INBOX"), await count(dovecot, "Processed")) == (0, 1)
