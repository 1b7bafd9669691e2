"""The dead-letter queue shared by two gateways on two "machines" (separate data folders and
processes) with one PostgreSQL, one S3-compatible store and one Kafka.

GIVEN documents sent to replica A with a reference and a contact that match no complaint,
WHEN both replicas are asked to redrive the record with the right reference at once, THEN one
does (200) and the other answers 409; one ``complaint.document_added``, its file read back
from the S3 store; the command line of a third machine sees the record closed by the admin.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.events import topics
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from tests.integration.dlq.test_admin_http import ADMIN, PDF, bearer
from tests.integration.test_replicas import shared_settings, start_replicas
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.http import GatewayProcess
from tests.support.pages import post_form
from tests.support.s3 import S3Bucket

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
async def replicas(
    kafka_settings: KafkaSettings, postgres_url: str, s3_bucket: S3Bucket, tmp_path: Path
) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess, dict[str, str]]]:
    settings = {
        **shared_settings(postgres_url, s3_bucket),
        "GATEWAY_ADMIN_TOKENS": json.dumps({"marie": ADMIN}),
    }
    a, b = await start_replicas(kafka_settings, settings, tmp_path)
    try:
        yield a, b, settings
    finally:
        a.stop()
        b.stop()


async def test_a_record_of_one_replica_is_redriven_once_by_either(
    replicas: tuple[GatewayProcess, GatewayProcess, dict[str, str]],
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    a, b, settings = replicas
    async with httpx.AsyncClient(timeout=60) as client:
        filed = await client.post(
            f"{a.url}/v1/webhooks/forms/contact-form",
            **signed_json({"body": "Ma carte est perdue.", "email": "lea@example.org"}),
        )
        reference = filed.json()["reference"]
        sent = await post_form(
            client,
            f"{a.url}/complaints/documents?lang=en",
            f"{a.url}/complaints/documents?lang=en",
            {
                "reference": reference_for(f"typo-{uuid.uuid4()}"),
                "contact": "lea@example.org",
                "submission_id": str(uuid.uuid4()),
            },
            files=[("attachments", ("bill.pdf", PDF, "application/pdf"))],
        )
        assert sent.status_code == 200
        [record] = (await client.get(f"{b.url}/v1/admin/dlq", headers=bearer(ADMIN))).json()
        assert record["source_uri"].startswith("s3://")
        complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
        await complaints.mark()
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{replica.url}/v1/admin/dlq/{record['id']}/redrive",
                    headers=bearer(ADMIN),
                    json={"reference": reference},
                )
                for replica in (a, b)
            )
        )
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    events = [json.loads(r.value) for r in await complaints.read(2, timeout_s=10)]
    assert [(e["type"], e["subject"]) for e in events] == [("complaint.document_added", reference)]
    [attachment] = events[0]["data"]["attachments"]
    assert attachment["uri"].startswith("s3://")

    env = {
        **os.environ,
        **settings,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "GATEWAY_DATA_DIR": str(tmp_path / "machine-c"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "dlq",
        "list",
        "--all",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    [line] = out.decode().splitlines()
    assert line.startswith(record["id"])
    assert line.endswith("\tredriven")
