"""``/v1/admin/dlq`` against ``intake-gateway run --only http`` (a real process, broker and
state): who may call it, and documents that matched no complaint redriven with the right
reference; the DLQ gauges on ``/metrics``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.events import topics
from gateway.events.envelope import event_id
from gateway.reference import reference_for
from gateway.settings import KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.http import GatewayProcess
from tests.support.pages import post_form

pytestmark = pytest.mark.integration

ADMIN, CONSUMER = "admin-token-marie-0123456789", "consumer-token-case-0123456789"
PDF = b"%PDF-1.4\n% the hospital's bill\n%%EOF\n"


@pytest.fixture(scope="module")
def gateway(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """``run --only http`` with an admin and a case system; its topics exist."""
    data_dir = tmp_path_factory.mktemp("admin-gateway")
    process = GatewayProcess(
        kafka_settings.bootstrap,
        data_dir,
        log=data_dir / "gateway.log",
        GATEWAY_WEBHOOK_SECRETS='{"contact-form": "s3cret"}',
        GATEWAY_ADMIN_TOKENS=json.dumps({"marie": ADMIN}),
        GATEWAY_CONSUMER_TOKENS=json.dumps({"case-system": CONSUMER}),
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def client(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def unmatched_documents(client: httpx.AsyncClient, reference: str, contact: str) -> str:
    """Documents sent with a pair that matches no complaint; the record's id."""
    response = await post_form(
        client,
        "/complaints/documents?lang=en",
        "/complaints/documents?lang=en",
        {"reference": reference, "contact": contact, "submission_id": str(uuid.uuid4())},
        files=[("attachments", ("bill.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 200
    listed = await client.get("/v1/admin/dlq?reason=documents_unmatched", headers=bearer(ADMIN))
    [record] = [r for r in listed.json() if r["details"]["reference"] == reference]
    return str(record["id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/admin/dlq"),
        ("GET", "/v1/admin/dlq/00000000-0000-5000-8000-000000000000"),
        ("POST", "/v1/admin/dlq/00000000-0000-5000-8000-000000000000/redrive"),
        ("POST", "/v1/admin/dlq/00000000-0000-5000-8000-000000000000/dismiss"),
    ],
)
async def test_admin_endpoints_need_an_admins_token(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, bearer("not-a-token"), {"Authorization": f"Basic {ADMIN}"}):
        answer = await client.request(method, path, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"] == 'Bearer realm="admin"'
    answer = await client.request(method, path, headers=bearer(CONSUMER))
    assert answer.status_code == 403
    assert answer.json()["type"] == "urn:intake-gateway:problem:forbidden"
    answer = await client.request(method, path, headers=bearer(ADMIN))
    assert answer.status_code == (200 if path == "/v1/admin/dlq" else 404)


async def test_documents_unmatched_are_redriven_once_with_the_right_reference(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings
) -> None:
    filed = await client.post(
        "/v1/webhooks/forms/contact-form",
        **signed_json({"body": "Ma facture d'hôpital est fausse.", "email": "marie@example.org"}),
    )
    assert filed.status_code == 202
    reference = filed.json()["reference"]
    typo = reference_for(f"typo-{uuid.uuid4()}")  # a valid reference, not hers
    record_id = await unmatched_documents(client, typo, "marie@example.org")

    shown = (await client.get(f"/v1/admin/dlq/{record_id[:10]}", headers=bearer(ADMIN))).json()
    assert (shown["channel"], shown["status"]) == ("webform", "open")
    assert shown["details"]["files"] == "bill.pdf"
    assert 'name="contact"' in shown["raw_preview"]  # the form as it came
    as_it_is = await client.post(f"/v1/admin/dlq/{record_id}/redrive", headers=bearer(ADMIN))
    assert as_it_is.status_code == 200
    assert as_it_is.json()["redriven"] is False  # her address is not the typo's
    assert as_it_is.json()["record"]["attempts"] == 1
    assert await gauge(client, "gateway_dlq_open_records", "documents_unmatched") == 1
    assert await gauge(client, "gateway_dlq_oldest_open_age_seconds", "documents_unmatched") > 0
    refused = await client.post(
        f"/v1/admin/dlq/{record_id}/redrive", headers=bearer(ADMIN), json={"reference": "PL-1"}
    )
    assert refused.status_code == 422

    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    both = await asyncio.gather(
        *(
            client.post(
                f"/v1/admin/dlq/{record_id}/redrive",
                headers=bearer(ADMIN),
                json={"reference": reference},
            )
            for _ in range(2)
        )
    )
    assert sorted(answer.status_code for answer in both) == [200, 409]
    [done] = [answer.json() for answer in both if answer.status_code == 200]
    assert (done["redriven"], done["published"]) == (True, 1)
    assert (done["record"]["status"], done["record"]["closed_by"]) == ("redriven", "marie")
    [record] = await complaints.read(1)
    event = json.loads(record.value)
    assert (event["type"], event["subject"]) == ("complaint.document_added", reference)
    assert event["id"] == done["event_ids"][0]
    assert event["id"] == event_id("complaint.document_added", done["record"]["source_key"])
    [attachment] = event["data"]["attachments"]
    assert (attachment["filename"], attachment["sha256"]) == (
        "bill.pdf",
        hashlib.sha256(PDF).hexdigest(),
    )

    await complaints.mark()
    again = await client.post(
        f"/v1/admin/dlq/{record_id}/redrive", headers=bearer(ADMIN), json={"reference": reference}
    )
    assert again.status_code == 409
    assert "already redriven by marie" in again.json()["detail"]
    assert await complaints.read_to_end() == []
    open_ids = [r["id"] for r in (await client.get("/v1/admin/dlq", headers=bearer(ADMIN))).json()]
    assert record_id not in open_ids
    assert await gauge(client, "gateway_dlq_open_records", "documents_unmatched") == 0
    history = (await client.get(f"/v1/admin/dlq/{record_id}", headers=bearer(ADMIN))).json()
    assert [(a["by"], a["outcome"]) for a in history["actions"]] == [
        ("marie", "still_rejected"),
        ("marie", "redriven"),
    ]


async def test_a_dismissed_record_leaves_the_open_list_and_cannot_be_redriven(
    client: httpx.AsyncClient,
) -> None:
    record_id = await unmatched_documents(client, reference_for(f"x-{uuid.uuid4()}"), "a@b.example")
    dismissed = await client.post(
        f"/v1/admin/dlq/{record_id}/dismiss", headers=bearer(ADMIN), json={"note": "spam"}
    )
    assert dismissed.status_code == 200
    assert (dismissed.json()["status"], dismissed.json()["closed_by"]) == ("dismissed", "marie")
    redrive = await client.post(f"/v1/admin/dlq/{record_id}/redrive", headers=bearer(ADMIN))
    assert redrive.status_code == 409
    listed = await client.get("/v1/admin/dlq?status=dismissed", headers=bearer(ADMIN))
    assert record_id in [r["id"] for r in listed.json()]


async def gauge(client: httpx.AsyncClient, name: str, reason: str) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(rf'^{name}\{{reason="{reason}"\}} (\S+)$', text, re.MULTILINE)
    assert found is not None, f"{name} {reason} not in /metrics"
    return float(found.group(1))
