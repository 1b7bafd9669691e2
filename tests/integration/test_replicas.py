"""Two gateways on two "machines" (separate data folders, separate processes) sharing one
PostgreSQL, one S3-compatible store and one Kafka: what a public body runs for availability.
Nothing is published twice, nothing answered 202 is lost, and what one replica promised the
other keeps."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session

from gateway.events import topics
from gateway.settings import KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json, signed_multipart
from tests.support.http import SECRETS, GatewayProcess
from tests.support.s3 import S3Bucket

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

FORM = "/v1/webhooks/forms/contact-form"


@dataclass
class Replicas:
    a: GatewayProcess
    b: GatewayProcess
    bucket: S3Bucket
    database_url: str


def shared_settings(postgres_url: str, bucket: S3Bucket) -> dict[str, str]:
    return {
        "GATEWAY_STATE_URL": postgres_url,
        "GATEWAY_OBJECT_STORE_URL": bucket.object_store_url,
        "GATEWAY_S3_ENDPOINT_URL": bucket.endpoint,
        "GATEWAY_S3_REGION": bucket.region,
        "GATEWAY_S3_ACCESS_KEY_ID": bucket.access_key,
        "GATEWAY_S3_SECRET_ACCESS_KEY": bucket.secret_key,
        "GATEWAY_WEBHOOK_SECRETS": json.dumps(SECRETS),
        "GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE": "100000",
    }


@pytest.fixture
async def replicas(
    kafka_settings: KafkaSettings, postgres_url: str, s3_bucket: S3Bucket, tmp_path: Path
) -> AsyncIterator[Replicas]:
    settings = shared_settings(postgres_url, s3_bucket)
    a = GatewayProcess(
        kafka_settings.bootstrap, tmp_path / "machine-a", log=tmp_path / "a.log", **settings
    )
    b = GatewayProcess(
        kafka_settings.bootstrap, tmp_path / "machine-b", log=tmp_path / "b.log", **settings
    )
    await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
    try:
        yield Replicas(a, b, s3_bucket, postgres_url)
    finally:
        a.stop()
        b.stop()


async def post(url: str, request: dict[str, object]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await client.post(FORM, **request)  # type: ignore[arg-type]


def same_key(body: dict[str, object], key: str) -> dict[str, object]:
    request = signed_json(body)
    request["headers"]["Idempotency-Key"] = key  # type: ignore[index]
    return request


async def test_one_key_posted_twenty_times_across_both_gives_one_event_and_one_answer(
    replicas: Replicas, kafka_settings: KafkaSettings
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    key = str(uuid.uuid4())
    body = {"name": "Marie Tremblay", "email": "marie@example.org", "body": "Carte jamais reçue."}
    answers = await asyncio.gather(
        *(post((replicas.a if n % 2 else replicas.b).url, same_key(body, key)) for n in range(20))
    )
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.text for answer in answers}) == 1  # identical answers, one reference
    records = await reader.read(2, timeout_s=10)
    assert [json.loads(r.value)["data"]["source_message"]["id"] for r in records] == [key]
    other_body = {**body, "body": "Autre chose."}
    for replica in (replicas.a, replicas.b):
        conflict = await post(replica.url, same_key(other_body, key))
        assert conflict.status_code == 409


async def test_documents_sent_through_the_other_replica_reach_the_complaint(
    replicas: Replicas, kafka_settings: KafkaSettings
) -> None:
    filed = await post(
        replicas.a.url, signed_json({"email": "doc.owner@example.org", "body": "Ma carte."})
    )
    reference = filed.json()["reference"]
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    dlq = TopicReader(kafka_settings.bootstrap, topics.DLQ)
    await complaints.mark()
    await dlq.mark()

    async def send(contact: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=replicas.b.url, timeout=60) as client:
            return await client.post(
                "/complaints/documents?lang=en",
                data={
                    "reference": reference,
                    "contact": contact,
                    "message": "La lettre",
                    "submission_id": str(uuid.uuid4()),
                },
                files=[("attachments", ("lettre.pdf", b"%PDF-1.4 lettre", "application/pdf"))],
            )

    right, wrong = await send("DOC.OWNER@example.org"), await send("someone@example.org")
    assert right.status_code == wrong.status_code == 200
    assert right.text.replace(reference, "") != ""  # a page, the same neutral answer for both
    [added] = await complaints.read(1, timeout_s=10)
    event = json.loads(added.value)
    assert (event["type"], event["subject"]) == ("complaint.document_added", reference)
    assert event["data"]["attachments"][0]["uri"].startswith(f"s3://{replicas.bucket.bucket}/")
    [unmatched] = await dlq.read(1, timeout_s=10)
    assert json.loads(unmatched.value)["data"]["reason_code"] == "documents_unmatched"


async def test_a_consumer_with_only_kafka_and_s3_credentials_reads_every_attachment(
    replicas: Replicas, kafka_settings: KafkaSettings
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    sent: dict[str, bytes] = {}

    async def complaint(number: int) -> None:
        letter = f"%PDF-1.4 lettre {number} {uuid.uuid4()}".encode() * 50
        sent[hashlib.sha256(letter).hexdigest()] = letter
        replica = replicas.a if number % 2 else replicas.b
        fields = {"email": f"p{number}@example.org", "body": f"Plainte {number}"}
        answer = await post(
            replica.url, signed_multipart(fields, [(f"l{number}.pdf", letter, "application/pdf")])
        )
        assert answer.status_code == 202

    for start in range(0, 200, 20):
        await asyncio.gather(*(complaint(n) for n in range(start, start + 20)))
    records = await reader.read(200, timeout_s=60)
    uris = [json.loads(r.value)["data"]["attachments"][0]["uri"] for r in records]
    assert len(uris) == 200
    bucket = replicas.bucket
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=bucket.endpoint,
        region_name=bucket.region,
        aws_access_key_id=bucket.access_key,
        aws_secret_access_key=bucket.secret_key,
    ) as s3:
        for uri in uris:
            name, key = uri.removeprefix("s3://").split("/", 1)
            answer = await s3.get_object(Bucket=name, Key=key)
            async with answer["Body"] as stream:
                content = await stream.read()
            assert hashlib.sha256(content).hexdigest() == key.rsplit("/", 1)[1]
            assert sent[key.rsplit("/", 1)[1]] == content
