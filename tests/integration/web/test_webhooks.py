"""POST /v1/webhooks/forms/{form_id} over real HTTP, with a real broker behind it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from gateway.admin import create_topics
from gateway.events import topics
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.backends import open_state_backend
from gateway.web.signature import sign
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json, signed_multipart
from tests.support.http import gateway_settings, running_gateway
from tests.support.kafka import LocalBroker
from tests.support.objects import stored_bytes

pytestmark = pytest.mark.integration

COMPLAINT = {
    "name": "Marie Tremblay",
    "email": "marie@example.org",
    "body": "Je n'ai toujours pas reçu ma carte d'assurance maladie, c'est inacceptable.",
    "health_insurance_number": "TREM 8503 1512",
}
URL = "/v1/webhooks/forms/contact-form"


async def post(base: str, path: str, **request: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await client.post(path, **request)  # type: ignore[arg-type]


async def test_a_signed_json_submission_is_202_once_in_kafka(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    response = await post(gateway_url, URL, **signed_json(COMPLAINT))
    assert response.status_code == 202, response.text
    accepted = response.json()
    records = await reader.read(1)
    event = json.loads(records[0].value)
    assert (event["id"], event["subject"]) == (accepted["event_id"], accepted["reference"])
    assert event["data"]["channel"] == "webform"
    assert event["data"]["identifiers"][0]["value"] == "TREM85031512"
    assert accepted["acknowledge_by"] == event["data"]["due"]["acknowledge_by"]


async def test_multipart_files_are_in_the_claim_store_and_the_event_has_their_hash(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4000  # ~1 MB: beyond the in-memory spool
    response = await post(
        gateway_url,
        URL,
        **signed_multipart(
            {
                "body": "Voir la lettre jointe",
                "email": "a@example.org",
                "represented_person.name": "Léo",
            },
            [("../../etc/lettre.pdf", pdf, "application/pdf")],
        ),
    )
    assert response.status_code == 202, response.text
    data = json.loads((await reader.read(1))[0].value)["data"]
    attachment = data["attachments"][0]
    assert attachment["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert attachment["filename"] == "lettre.pdf"  # no path from the client
    assert attachment["size"] == len(pdf)
    assert await stored_bytes(web_settings, attachment["uri"]) == pdf
    on_disk = Path(attachment["uri"].removeprefix("file://")).read_bytes()
    assert bytes(range(256)) not in on_disk  # sealed: encryption at rest
    assert data["represented_person"]["name"] == "Léo"
    assert data["source_message"]["uri"].startswith("file://")


async def test_idempotency_same_key_same_body_same_answer_other_body_409(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    request = signed_json(COMPLAINT)
    first, again = await asyncio.gather(
        post(gateway_url, URL, **request), post(gateway_url, URL, **request)
    )
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    other = signed_json(
        {**COMPLAINT, "body": "Autre texte"},
        **{"Idempotency-Key": request["headers"]["Idempotency-Key"]},
    )
    conflict = await post(gateway_url, URL, **other)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    records = await reader.read(2, timeout_s=5)
    assert [json.loads(r.value)["id"] for r in records] == [first.json()["event_id"]]


async def test_a_key_claimed_by_a_request_still_at_work_is_503_and_not_published_twice(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    """GIVEN a key claimed by a request still at work (its lock lost with its database
    connection, on another replica) WHEN the same key is posted THEN 503 with Retry-After and
    nothing published; once that claim is let go, the retry is accepted, once."""
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    request = signed_json(COMPLAINT)
    key = request["headers"]["Idempotency-Key"]  # type: ignore[index]
    backend = await open_state_backend(web_settings)
    try:
        assert await backend.state.claim_key("form:contact-form", key, 120.0)
        busy = await post(gateway_url, URL, **request)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "5"
        assert "still being processed" in busy.json()["detail"]
        await backend.state.release_key("form:contact-form", key)
        accepted = await post(gateway_url, URL, **request)
        assert accepted.status_code == 202, accepted.text
        assert await backend.state.claim_key("form:contact-form", key, 120.0)  # answered: free
    finally:
        await backend.close()
    records = await reader.read(2, timeout_s=5)
    assert [json.loads(r.value)["id"] for r in records] == [accepted.json()["event_id"]]


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong secret",
        "old timestamp",
        "tampered body",
        "missing",
        "malformed",
        "other form's secret",
    ],
)
async def test_signature_bypass_attempts_are_401(gateway_url: str, tamper: str) -> None:
    body = json.dumps(COMPLAINT).encode()
    signature = {
        "wrong secret": sign(body, "guess"),
        "old timestamp": sign(body, "s3cret", int(time.time()) - 600),
        "tampered body": sign(body.replace(b"Marie", b"Mallory"), "s3cret"),
        "missing": None,
        "malformed": "v1=deadbeef",
        "other form's secret": sign(body, "other-secret"),
    }[tamper]
    headers = {"content-type": "application/json"}
    if signature:
        headers["X-Gateway-Signature"] = signature
    response = await post(gateway_url, URL, content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:intake-gateway:problem:bad-signature"


async def test_key_rotation_the_previous_secret_still_works(gateway_url: str) -> None:
    response = await post(gateway_url, URL, **signed_json(COMPLAINT, secret="previous-secret"))
    assert response.status_code == 202


async def test_invalid_fields_are_422_naming_them(gateway_url: str) -> None:
    response = await post(gateway_url, URL, **signed_json({"email": "not-an-address", "kind": "x"}))
    assert response.status_code == 422
    assert {error["field"] for error in response.json()["errors"]} == {"email", "kind", "body"}


async def test_a_form_builders_fields_are_mapped(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    fields = {
        "answers": {"text": "Question sur ma carte"},
        "contact": {"mail": "b@example.org", "full_name": "Bob"},
    }
    body = json.dumps(fields).encode()
    response = await post(
        gateway_url,
        "/v1/webhooks/forms/builder-form",
        content=body,
        headers={"content-type": "application/json", "X-Gateway-Signature": sign(body, "builder")},
    )
    assert response.status_code == 202, response.text
    data = json.loads((await reader.read(1))[0].value)["data"]
    assert (data["body"], data["complainant"]["email"], data["complainant"]["name"]) == (
        "Question sur ma carte",
        "b@example.org",
        "Bob",
    )


async def test_an_unknown_form_is_404(gateway_url: str) -> None:
    body = json.dumps(COMPLAINT).encode()
    response = await post(
        gateway_url,
        "/v1/webhooks/forms/nobody",
        content=body,
        headers={"content-type": "application/json", "X-Gateway-Signature": sign(body, "x")},
    )
    assert response.status_code == 404
    assert response.json()["title"] == "Unknown form"


@pytest.mark.parametrize(
    ("content_type", "status"), [("text/plain", 415), ("application/xml", 415), ("", 415)]
)
async def test_unsupported_media_types_are_415(
    gateway_url: str, content_type: str, status: int
) -> None:
    body = b"hello"
    response = await post(
        gateway_url,
        URL,
        content=body,
        headers={"content-type": content_type, "X-Gateway-Signature": sign(body, "s3cret")},
    )
    assert response.status_code == status


async def test_oversized_requests_and_files_are_413(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = gateway_settings(
        kafka_settings, tmp_path, max_request_bytes=200_000, max_file_bytes=50_000
    )
    async with running_gateway(settings) as (url, _):
        too_big = await post(
            url,
            URL,
            **signed_multipart(
                {"body": "x"}, [("a.bin", b"0" * 300_000, "application/octet-stream")]
            ),
        )
        big_file = await post(
            url,
            URL,
            **signed_multipart(
                {"body": "x"}, [("b.bin", b"0" * 100_000, "application/octet-stream")]
            ),
        )
    assert too_big.status_code == 413
    assert big_file.status_code == 413
    assert "b.bin" in big_file.json()["detail"]
    stored = [path for path in (tmp_path / "objects").rglob("*") if path.is_file()]
    assert stored == []  # a refused request keeps nothing


async def test_too_many_submissions_of_one_form_are_429_with_retry_after(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = gateway_settings(kafka_settings, tmp_path, rate_per_form_per_minute=3)
    async with running_gateway(settings) as (url, _):
        answers = [await post(url, URL, **signed_json(COMPLAINT)) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    assert answers[3].status_code == 429
    assert int(answers[3].headers["retry-after"]) >= 1


async def test_signed_submissions_are_not_limited_by_the_senders_address(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """A form platform posts for many people from one server: its signature says who it is."""
    settings = gateway_settings(kafka_settings, tmp_path, rate_per_client_per_minute=3)
    async with running_gateway(settings) as (url, _):
        answers = [await post(url, URL, **signed_json(COMPLAINT)) for _ in range(8)]
    assert [a.status_code for a in answers] == [202] * 8


async def test_an_address_sending_bad_signatures_is_limited_as_an_unsigned_client(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = gateway_settings(kafka_settings, tmp_path, rate_per_client_per_minute=3)
    forged = signed_json(COMPLAINT, secret="not-the-secret")
    async with running_gateway(settings) as (url, _):
        refused = [await post(url, URL, **forged) for _ in range(2)]
        unknown = await post(url, "/v1/webhooks/forms/no-such-form", **forged)
        limited = await post(url, URL, **forged)
        genuine = await post(url, URL, **signed_json(COMPLAINT))
    assert [a.status_code for a in refused] == [401, 401]
    assert unknown.status_code == 404  # counted too: probing form ids costs allowance
    assert limited.status_code == 429
    assert genuine.status_code == 429  # the address, not the request, is held back
    assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.fault
@pytest.mark.slow
async def test_kafka_stopped_503_then_the_retried_submission_is_accepted_once(
    private_broker: LocalBroker, tmp_path: Path
) -> None:
    kafka = KafkaSettings(
        bootstrap=private_broker.bootstrap, publish_timeout_s=4.0, request_timeout_s=3.0
    )
    await create_topics(kafka)
    settings = gateway_settings(kafka, tmp_path)
    request = signed_json(COMPLAINT)
    async with running_gateway(settings) as (url, _):
        assert (await post(url, URL, **signed_json(COMPLAINT))).status_code == 202
        await asyncio.to_thread(private_broker.stop)
        started = time.monotonic()
        down = await post(url, URL, **request)
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        assert time.monotonic() - started < 15
        await asyncio.to_thread(private_broker.start)
        request["headers"]["X-Gateway-Signature"] = sign(request["content"], "s3cret")
        retried = await post(url, URL, **request)
        assert retried.status_code == 202
        again = await post(url, URL, **request)
    assert again.json() == retried.json()
    reader = TopicReader(kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark_beginning()
    records = await reader.read(10, timeout_s=5)
    ids = {
        json.loads(r.value)["id"]
        for r in records
        if json.loads(r.value)["subject"] == retried.json()["reference"]
    }
    assert ids == {retried.json()["event_id"]}
