"""Two gateways on two "machines" (separate data folders, separate processes) sharing one
PostgreSQL, one S3-compatible store and one Kafka: what a public body runs for availability.
Nothing is published twice, nothing answered 202 is lost, and what one replica promised the
other keeps."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from aiobotocore.session import get_session

from gateway.events import topics
from gateway.settings import KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json, signed_multipart
from tests.support.http import SECRETS, GatewayProcess
from tests.support.kafka import free_port
from tests.support.pages import post_form
from tests.support.postgres import PostgresServer
from tests.support.prism import TwilioMock
from tests.support.s3 import S3Bucket, S3Server

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

FORM = "/v1/webhooks/forms/contact-form"


@dataclass
class Replicas:
    a: GatewayProcess
    b: GatewayProcess
    bucket: S3Bucket
    database_url: str


CASE_SYSTEM_TOKEN = "case-system-token"


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
        "GATEWAY_CONSUMER_TOKENS": json.dumps({"case-system": CASE_SYSTEM_TOKEN}),
    }


async def start_replicas(
    kafka_settings: KafkaSettings, settings: dict[str, str], tmp_path: Path
) -> tuple[GatewayProcess, GatewayProcess]:
    a, b = (
        GatewayProcess(
            kafka_settings.bootstrap,
            tmp_path / f"machine-{name}",
            log=tmp_path / f"{name}.log",
            **settings,
        )
        for name in ("a", "b")
    )
    await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
    return a, b


@pytest.fixture
async def replicas(
    kafka_settings: KafkaSettings, postgres_url: str, s3_bucket: S3Bucket, tmp_path: Path
) -> AsyncIterator[Replicas]:
    settings = shared_settings(postgres_url, s3_bucket)
    a, b = await start_replicas(kafka_settings, settings, tmp_path)
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
            return await post_form(
                client,
                "/complaints/documents?lang=en",
                "/complaints/documents?lang=en",
                {
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


async def test_a_consumer_reads_every_attachment_through_either_replica_sealed_in_the_bucket(
    replicas: Replicas, kafka_settings: KafkaSettings
) -> None:
    """GIVEN 200 complaints with a letter each through both replicas WHEN a case system reads
    each s3:// attachment by its SHA-256 from either replica THEN it gets the letter (hash
    checked); the bucket itself holds them sealed (encryption at rest): S3 credentials alone
    read nothing of them."""
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
    token = {"Authorization": f"Bearer {CASE_SYSTEM_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=replicas.a.url, headers=token, timeout=60) as a,
        httpx.AsyncClient(base_url=replicas.b.url, headers=token, timeout=60) as b,
        get_session().create_client(
            "s3",
            endpoint_url=bucket.endpoint,
            region_name=bucket.region,
            aws_access_key_id=bucket.access_key,
            aws_secret_access_key=bucket.secret_key,
        ) as s3,
    ):
        for number, uri in enumerate(uris):
            name, key = uri.removeprefix("s3://").split("/", 1)
            sha256 = key.rsplit("/", 1)[1]
            answer = await (a if number % 2 else b).get(f"/v1/objects/{sha256}")
            assert answer.status_code == 200
            assert hashlib.sha256(answer.content).hexdigest() == sha256
            assert sent[sha256] == answer.content
            stored = await s3.get_object(Bucket=name, Key=key)
            async with stored["Body"] as stream:
                sealed = await stream.read()
            assert b"lettre" not in sealed


async def test_sms_code_limits_hold_across_replicas(
    kafka_settings: KafkaSettings,
    postgres_url: str,
    s3_bucket: S3Bucket,
    twilio: TwilioMock,
    tmp_path: Path,
) -> None:
    """GIVEN 2 codes an hour per number WHEN codes are asked alternately through A and B THEN
    the third is refused, wherever it lands (each replica alone would have allowed 2)."""
    settings = shared_settings(postgres_url, s3_bucket) | twilio_environment(twilio)
    settings["GATEWAY_NOTIFIER_SMS_PER_NUMBER_PER_HOUR"] = "2"
    a, b = await start_replicas(kafka_settings, settings, tmp_path)
    try:
        fields = {"name": "Ann Lee", "phone": "+15145550142", "body": "My card never came."}
        filed = await post(a.url, signed_json(fields))
        reference = filed.json()["reference"]
        codes = []
        for replica in (a, b, a, b):
            async with httpx.AsyncClient(base_url=replica.url, timeout=60) as client:
                answer = await client.post(
                    "/v1/verify/sms/start",
                    json={"reference": reference, "phone": "+15145550142"},
                )
            codes.append(answer.status_code)
    finally:
        a.stop()
        b.stop()
    assert codes == [202, 202, 429, 429]


def twilio_environment(twilio: TwilioMock) -> dict[str, str]:
    values = twilio.settings()
    return {
        "GATEWAY_TWILIO_ACCOUNT_SID": str(values["account_sid"]),
        "GATEWAY_TWILIO_AUTH_TOKEN": str(values["auth_token"]),
        "GATEWAY_TWILIO_VERIFY_SERVICE_SID": str(values["verify_service_sid"]),
        "GATEWAY_TWILIO_FROM": str(values["from"]),
        "GATEWAY_TWILIO_API_BASE": json.dumps({k: str(v) for k, v in values["api_base"].items()}),  # type: ignore[union-attr]
    }


async def test_a_duplicate_is_found_when_the_earlier_complaint_came_through_the_other_replica(
    replicas: Replicas, kafka_settings: KafkaSettings
) -> None:
    text = (
        "Mon NAM : TREM 8503 1512. J'ai demandé le renouvellement de ma carte d'assurance "
        "maladie en août et je ne l'ai toujours pas reçue malgré trois appels au service."
    )
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    first = await post(replicas.a.url, signed_json({"name": "Marie", "body": text}))
    second = await post(replicas.b.url, signed_json({"name": "Marie", "body": text + " Merci."}))
    assert first.status_code == second.status_code == 202
    records = await reader.read(2, timeout_s=10)
    by_reference = {json.loads(r.value)["subject"]: json.loads(r.value)["data"] for r in records}
    later = by_reference[second.json()["reference"]]
    assert later["possible_duplicate_of"] == first.json()["reference"]
    assert "possible_duplicate" in later["flags"]


@pytest.mark.fault
async def test_postgresql_restarted_and_s3_stopped_under_load_lose_nothing_and_repeat_nothing(
    replicas: Replicas,
    kafka_settings: KafkaSettings,
    postgres_server: PostgresServer,
    s3_server: S3Server,
) -> None:
    """GIVEN form submissions flowing through both replicas WHEN PostgreSQL restarts and the S3
    server is away for 10 s THEN some get 503 (the client retries them with the same key), none
    answered 202 is missing from Kafka, none is there twice, and both replicas serve again by
    themselves."""
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    accepted: set[str] = set()
    unavailable = 0
    stop = asyncio.Event()

    async def client(number: int) -> None:
        nonlocal unavailable
        replica = replicas.a if number % 2 else replicas.b
        while not stop.is_set():
            key = str(uuid.uuid4())
            body = {"email": f"load{number}@example.org", "body": f"Plainte {key}"}
            while True:  # as a form platform does: the same key again until it is accepted
                try:
                    answer = await post(replica.url, same_key(body, key))
                except httpx.TransportError:
                    answer = None
                if answer is not None and answer.status_code == 202:
                    accepted.add(key)
                    break
                assert answer is None or answer.status_code == 503, answer.text
                unavailable += 1
                await asyncio.sleep(0.5)

    load = [asyncio.create_task(client(n)) for n in range(8)]
    await asyncio.sleep(3)
    await asyncio.to_thread(postgres_server.restart)
    await asyncio.sleep(3)
    await asyncio.to_thread(s3_server.stop)
    await asyncio.sleep(10)
    await asyncio.to_thread(s3_server.start)
    before = len(accepted)
    await asyncio.sleep(5)
    assert len(accepted) > before, "the replicas did not resume by themselves"
    stop.set()
    await asyncio.wait_for(asyncio.gather(*load), timeout=120)
    records = await reader.read(len(accepted) + 50, timeout_s=20)
    published = [json.loads(r.value)["data"]["source_message"]["id"] for r in records]
    print(f"outages: {len(accepted)} accepted, {unavailable} answers of 503 or no answer")
    assert unavailable > 0, "the outages were not felt: the test proves nothing"
    assert sorted(published) == sorted(accepted)  # each once, none lost


@pytest.mark.parametrize("fault", ["unreachable", "password", "database", "bucket"])
async def test_bad_settings_stop_start_up_with_one_line_naming_the_setting(
    kafka_settings: KafkaSettings,
    postgres_url: str,
    s3_bucket: S3Bucket,
    fault: str,
    tmp_path: Path,
) -> None:
    settings = shared_settings(postgres_url, s3_bucket)
    settings["GATEWAY_DATA_DIR"] = str(tmp_path / "data")
    parts = urlsplit(postgres_url)
    if fault == "unreachable":
        settings["GATEWAY_STATE_URL"] = postgres_url.replace(f":{parts.port}/", f":{free_port()}/")
    elif fault == "password":
        settings["GATEWAY_STATE_URL"] = postgres_url.replace(f":{parts.password}@", ":wrong@")
    elif fault == "database":
        settings["GATEWAY_STATE_URL"] = urlunsplit(parts._replace(path="/nowhere"))
    else:
        settings["GATEWAY_OBJECT_STORE_URL"] = "s3://no-such-bucket"
    environment = {**os.environ, "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap, **settings}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "run", "--only", "http"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # the log's JSON lines aside, what a person reads: one line
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("{")]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    named = "GATEWAY_OBJECT_STORE_URL" if fault == "bucket" else "GATEWAY_STATE_URL"
    assert lines[0].startswith(f"intake-gateway: configuration error: {named}: ")
    assert "wrong" not in lines[0]
