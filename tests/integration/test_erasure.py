"""Erasure on request, end to end: complaints filed through a running gateway (embedded files,
or PostgreSQL and an S3 bucket), one of them erased by ``intake-gateway erase``. Afterwards no
byte of its marker text is left under the data folder or in the bucket, its state rows are
gone, ``complaint.erased`` is on the topic, the attachment another complaint also sent is kept
for it, the erasure itself is on record (reference and time), and a complaint on legal hold is
not erased."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from gateway.events import topics
from gateway.notifier.ledger import Contact
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.backends import open_state_backend
from tests.support.consumer import TopicReader
from tests.support.forms import signed_multipart
from tests.support.http import gateway_settings, running_gateway
from tests.support.s3 import S3Bucket, S3Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKER = "Zyxwvq"
TOKEN = "erasure-case-system"
SHARED = b"%PDF-1.4 a letter both complaints sent " * 40
PRIVATE = f"%PDF-1.4 {MARKER} medical report: {MARKER} has diabetes ".encode() * 40


@dataclass
class Site:
    url: str
    settings: GatewaySettings
    env: dict[str, str]
    bucket: S3Bucket | None


def environment(settings: GatewaySettings, bucket: S3Bucket | None) -> dict[str, str]:
    env = {
        "GATEWAY_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "GATEWAY_DATA_DIR": str(settings.data_dir),
    }
    if settings.state_url is not None:
        env["GATEWAY_STATE_URL"] = settings.state_url.get_secret_value()
    if bucket is not None:
        env |= {
            "GATEWAY_OBJECT_STORE_URL": bucket.object_store_url,
            "GATEWAY_S3_ENDPOINT_URL": bucket.endpoint,
            "GATEWAY_S3_REGION": bucket.region,
            "GATEWAY_S3_ACCESS_KEY_ID": bucket.access_key,
            "GATEWAY_S3_SECRET_ACCESS_KEY": bucket.secret_key,
        }
    return env


@pytest.fixture(params=["embedded", "postgres+s3"])
async def site(
    request: pytest.FixtureRequest, kafka_settings: KafkaSettings, tmp_path: Path
) -> AsyncIterator[Site]:
    settings = gateway_settings(kafka_settings, tmp_path / "data")
    settings = settings.model_copy(update={"consumer_tokens": {"case": SecretStr(TOKEN)}})
    bucket = None
    if request.param == "postgres+s3":
        bucket = request.getfixturevalue("s3_bucket")
        url = request.getfixturevalue("postgres_url")
        settings = settings.model_copy(
            update={
                "state_url": SecretStr(url),
                "object_store_url": bucket.object_store_url,
                "s3": bucket.settings(),
            }
        )
    async with running_gateway(settings) as (url, _):
        yield Site(url, settings, environment(settings, bucket), bucket)


async def cli(site: Site, *args: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={**clean, **site.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def file_complaint(
    site: Site, fields: dict[str, str], files: list[tuple[str, bytes, str]]
) -> str:
    async with httpx.AsyncClient(base_url=site.url, timeout=60) as client:
        answer = await client.post(
            "/v1/webhooks/forms/contact-form", **signed_multipart(fields, files)
        )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["reference"])


def marked_files(data_dir: Path) -> list[str]:
    """Files under the data folder holding the marker (any case), in clear."""
    needles = (MARKER.encode(), MARKER.lower().encode(), MARKER.upper().encode())
    return sorted(
        str(path.relative_to(data_dir))
        for path in data_dir.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    )


def bucket_bytes(server: S3Server, bucket: S3Bucket) -> dict[str, bytes]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket.bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket.bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


async def rows_naming(site: Site, reference: str) -> dict[str, int]:
    """Rows of the state store that still name the reference, by table."""
    queries = {
        "catalog": "SELECT count(*) FROM {stored_object} WHERE reference = ?",
        "contact hashes": "SELECT count(*) FROM {complaint_contacts} WHERE reference = ?",
        "contacts": "SELECT count(*) FROM {contacts} WHERE reference = ?",
    }
    state_url = site.settings.state_url
    if state_url is None:
        state = site.settings.data_dir / "state"
        files = {"stored_object": "state", "complaint_contacts": "state", "contacts": "notifier"}
        counts = {}
        for name, sql in queries.items():
            table = next(t for t in files if "{" + t + "}" in sql)
            with sqlite3.connect(state / f"{files[table]}.sqlite") as db:
                counts[name] = db.execute(sql.format(**{table: table}), (reference,)).fetchone()[0]
        return counts
    connection = await asyncpg.connect(state_url.get_secret_value())
    try:
        names = {"stored_object": "stored_object", "complaint_contacts": "complaint_contacts"}
        names["contacts"] = "notifier_contacts"
        return {
            name: await connection.fetchval(sql.format(**names).replace("?", "$1"), reference)
            for name, sql in queries.items()
        }
    finally:
        await connection.close()


async def test_given_two_complaints_sharing_a_letter_when_one_is_erased_then_nothing_of_it_is_left(
    site: Site, kafka_settings: KafkaSettings, request: pytest.FixtureRequest
) -> None:
    person = {"name": f"Marie {MARKER}", "email": f"{MARKER.lower()}@example.org"}
    erased = await file_complaint(
        site,
        {**person, "body": f"Bonjour, je suis {MARKER} et ma carte n'est jamais arrivée."},
        [
            (f"{MARKER}-report.pdf", PRIVATE, "application/pdf"),
            ("lettre.pdf", SHARED, "application/pdf"),
        ],
    )
    other = await file_complaint(
        site,
        {"name": "Jean Roy", "email": "jean.roy@example.org", "body": "La même lettre."},
        [("lettre.pdf", SHARED, "application/pdf")],
    )
    backend = await open_state_backend(site.settings)  # the notifier's memory of the person
    try:
        await backend.ledger.remember_contact(
            Contact(erased, name=person["name"], email=person["email"])
        )
    finally:
        await backend.close()
    private, shared = hashlib.sha256(PRIVATE).hexdigest(), hashlib.sha256(SHARED).hexdigest()
    token = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=site.url, headers=token) as client:
        assert (await client.get(f"/v1/objects/{private}")).content == PRIVATE
    if site.bucket is None:
        assert marked_files(site.settings.data_dir)  # before: its name in the catalog, at least
    assert await rows_naming(site, erased) == {"catalog": 3, "contact hashes": 1, "contacts": 1}

    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    code, out, err = await cli(site, "erase", erased)
    assert code == 0, err
    assert "objects_shredded\t2" in out  # the report and the raw copy
    assert "objects_kept_for_others\t1" in out  # the letter the other complaint sent
    [event] = [json.loads(record.value) for record in await complaints.read(1)]
    assert (event["type"], event["subject"]) == ("complaint.erased", erased)
    assert set(event["data"]) == {"reference", "erased_at"}

    assert marked_files(site.settings.data_dir) == []
    assert await rows_naming(site, erased) == {"catalog": 0, "contact hashes": 0, "contacts": 0}
    async with httpx.AsyncClient(base_url=site.url, headers=token) as client:
        assert (await client.get(f"/v1/objects/{private}")).status_code == 404
        assert (await client.get(f"/v1/objects/{shared}")).content == SHARED  # the other's
    if site.bucket is not None:
        stored = bucket_bytes(request.getfixturevalue("s3_server"), site.bucket)
        assert not any(private in key for key in stored)
        assert any(shared in key for key in stored)
        assert not any(
            MARKER.encode() in data or MARKER.lower().encode() in data for data in stored.values()
        )

    code, out, _ = await cli(site, "audit", erased)
    assert code == 0
    assert out.strip().splitlines()[-1].endswith(f"\t-\t{erased}\terased")
    again, out, _ = await cli(site, "erase", erased)
    assert again == 0
    assert f"published\tcomplaint.erased\t{event['id']}" in out  # the same event: a repeat

    code, _, _ = await cli(site, "retention", "hold", other, "--note", "inquiry 2027-03")
    assert code == 0
    refused, _, err = await cli(site, "erase", other)
    assert refused == 1
    assert "on legal hold" in err
    assert "inquiry 2027-03" in err
    async with httpx.AsyncClient(base_url=site.url, headers=token) as client:
        assert (await client.get(f"/v1/objects/{shared}")).status_code == 200
