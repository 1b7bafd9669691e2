"""JSON nested deeper than the limit (64) on every JSON entry point of a running gateway: a 400
``too-deep`` problem document naming the limit, nothing published, and the server answers the
next ordinary request at once. Deep and wide documents come from hypothesis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.events import topics
from gateway.settings import GatewaySettings
from gateway.web.signature import sign
from tests.support.consumer import TopicReader
from tests.support.deep import Nested, deep_documents, nest
from tests.support.forms import signed_json

pytestmark = pytest.mark.integration

WEBHOOK = "/v1/webhooks/forms/contact-form"
TOO_DEEP = "urn:intake-gateway:problem:too-deep"
SMS_FIELDS = ("reference", "phone", "code")


def signed(body: bytes) -> dict[str, Any]:
    return {
        "content": body,
        "headers": {
            "content-type": "application/json",
            "X-Gateway-Signature": sign(body, "s3cret"),
            "Idempotency-Key": str(uuid.uuid4()),
        },
    }


def assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == TOO_DEEP
    assert problem["title"] == "JSON nested too deeply"
    assert "64" in problem["detail"]


async def published(web_settings: GatewaySettings, readers: list[TopicReader]) -> int:
    return sum([len(await reader.read_to_end()) for reader in readers])


@pytest.fixture
async def readers(web_settings: GatewaySettings) -> list[TopicReader]:
    marked = [
        TopicReader(web_settings.kafka.bootstrap, topic)
        for topic in (topics.COMPLAINTS, topics.DLQ, topics.NOTIFICATIONS)
    ]
    for reader in marked:
        await reader.mark()
    return marked


def run_examples(url: str, strategy: st.SearchStrategy[Nested], path: str) -> None:
    """Each example posted, then an ordinary request that must answer within 2 seconds."""

    @given(strategy)
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def post(nested: Nested) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            if path == WEBHOOK:
                assert_too_deep(client.post(path, **signed(nested.document)))
            else:
                assert_too_deep(
                    client.post(
                        path, content=nested.document, headers={"content-type": "application/json"}
                    )
                )
            assert client.get("/healthz", timeout=2).status_code == 200

    post()


async def test_given_deep_and_wide_form_submissions_then_400_too_deep_and_nothing_published(
    gateway_url: str, web_settings: GatewaySettings, readers: list[TopicReader]
) -> None:
    await asyncio.to_thread(run_examples, gateway_url, deep_documents(), WEBHOOK)
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        fine = await client.post(WEBHOOK, **signed_json({"body": "Après: une plainte ordinaire."}))
    assert fine.status_code == 202, fine.text
    assert await published(web_settings, readers) == 1  # the ordinary one alone


@pytest.mark.parametrize("path", ["/v1/verify/sms/start", "/v1/verify/sms/check"])
async def test_given_deep_sms_verification_bodies_then_400_too_deep_and_nothing_published(
    gateway_url: str, web_settings: GatewaySettings, readers: list[TopicReader], path: str
) -> None:
    await asyncio.to_thread(run_examples, gateway_url, deep_documents(SMS_FIELDS), path)
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        ordinary = await client.post(
            path, json={"reference": "PL-AAAA-AAAA-AAAA", "phone": "+15145550142", "code": "1234"}
        )
        malformed = await client.post(
            path, content=b"{", headers={"content-type": "application/json"}
        )
    assert ordinary.status_code == 422, ordinary.text  # the app's own problem documents still
    assert ordinary.json()["errors"][0]["field"] == "reference"
    assert malformed.status_code == 422, malformed.text
    assert await published(web_settings, readers) == 0


async def test_given_json_at_the_limit_then_it_is_parsed_and_judged_on_its_fields(
    gateway_url: str,
) -> None:
    """63 levels under ``body`` (64 with the object): read, then refused as an invalid field."""
    body = b'{"body": ' + nest(63, ["[", "{"], 2) + b"}"
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        at_limit = await client.post(WEBHOOK, **signed(body))
        one_more = await client.post(WEBHOOK, **signed(body[:9] + b"[" + body[9:-1] + b"]}"))
    assert at_limit.status_code == 422, at_limit.text
    assert at_limit.json()["errors"][0]["field"] == "body"
    assert_too_deep(one_more)


async def test_a_wide_shallow_body_is_not_taken_for_a_deep_one(gateway_url: str) -> None:
    """100,000 siblings three levels deep: many brackets, little depth."""
    body = b'{"body": [' + b",".join([b'[{"a": "]]]"}]'] * 100_000) + b"]}"
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        response = await client.post(WEBHOOK, **signed(body))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
