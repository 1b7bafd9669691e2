"""Sending documents for a complaint already filed: reference + the contact given with it."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from gateway.events import topics
from gateway.settings import GatewaySettings
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.objects import stored_bytes
from tests.support.pages import post_form

pytestmark = pytest.mark.integration


async def file_complaint(gateway_url: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        response = await client.post(
            "/v1/webhooks/forms/contact-form",
            **signed_json({"body": "Ma carte n'est pas arrivée.", "email": email}),
        )
    assert response.status_code == 202
    return str(response.json()["reference"])


async def send_documents(gateway_url: str, reference: str, contact: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        return await post_form(
            client,
            "/complaints/documents?lang=en",
            "/complaints/documents?lang=en",
            {
                "reference": reference,
                "contact": contact,
                "message": "Here is the letter",
                "submission_id": str(uuid.uuid4()),
            },
            files=[("attachments", ("letter.pdf", b"%PDF-1.4 letter", "application/pdf"))],
        )


async def test_the_right_pair_adds_the_documents_to_the_complaint(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reference = await file_complaint(gateway_url, "doc.owner@example.org")
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    response = await send_documents(
        gateway_url, reference.lower().replace("-", " "), "DOC.OWNER@example.org"
    )
    assert response.status_code == 200
    event = json.loads((await reader.read(1))[0].value)
    assert (event["type"], event["subject"]) == ("complaint.document_added", reference)
    assert event["data"]["attachments"][0]["filename"] == "letter.pdf"
    assert event["data"]["body"] == "Here is the letter"


async def test_a_wrong_pair_gets_the_same_answer_and_adds_nothing(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reference = await file_complaint(gateway_url, "owner2@example.org")
    reader = TopicReader(web_settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    right = await send_documents(gateway_url, reference, "owner2@example.org")
    wrong = await send_documents(gateway_url, reference, "intruder@example.org")
    assert right.status_code == wrong.status_code == 200
    assert right.text == wrong.text  # reveals nothing
    records = await reader.read(2, timeout_s=5)
    assert len(records) == 1


async def test_a_wrong_pair_keeps_the_documents_for_the_office_on_the_dlq(
    gateway_url: str, web_settings: GatewaySettings
) -> None:
    reference = await file_complaint(gateway_url, "owner3@example.org")
    dlq = TopicReader(web_settings.kafka.bootstrap, topics.DLQ)
    await dlq.mark()
    response = await send_documents(gateway_url, reference, "0wner3@example.org")
    assert response.status_code == 200
    record = json.loads((await dlq.read(1))[0].value)["data"]
    assert record["reason_code"] == "documents_unmatched"
    assert record["details"] == {"reference": reference, "files": "letter.pdf"}
    raw_copy = await stored_bytes(web_settings, record["source_message"]["uri"])
    assert b"%PDF-1.4 letter" in raw_copy  # the file itself,
    assert b"0wner3@example.org" in raw_copy  # and the contact the office will compare


async def test_a_mistyped_reference_is_said_so(gateway_url: str) -> None:
    response = await send_documents(gateway_url, "PL-0000-0000-0001", "a@example.org")
    assert response.status_code == 422
    assert "Invalid file number" in response.text
