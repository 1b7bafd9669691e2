"""``GET /v1/objects/{sha256}`` as a case system on another machine uses it: the event names an
attachment by its hash; the bytes come back with a consumer's token, checked, in ranges, with
the name and type they were sent with; each read is on record."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.events import topics
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.consumer import TopicReader
from tests.support.forms import signed_multipart
from tests.support.http import gateway_settings, running_gateway

pytestmark = pytest.mark.integration

TOKEN = "case-system-token-1"
LETTER = b"%PDF-1.4\n" + bytes(range(256)) * 40  # 10 KiB and some
HOSTILE_NAME = 'lettre "finale"\r\nX-Evil: 1 ; é.pdf'


@pytest.fixture(scope="module")
async def served(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, GatewaySettings]]:
    settings = gateway_settings(kafka_settings, tmp_path_factory.mktemp("objects-data"))
    settings = settings.model_copy(
        update={"consumer_tokens": {"dossiers": SecretStr(TOKEN), "other": SecretStr("t-2")}}
    )
    async with running_gateway(settings) as (url, _):
        yield url, settings


async def attachment_of_a_new_complaint(
    url: str, settings: GatewaySettings, letter: bytes = LETTER
) -> dict[str, Any]:
    reader = TopicReader(settings.kafka.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    fields = {"name": "Marie Tremblay", "email": "marie@example.org", "body": "Voir la lettre."}
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(
            "/v1/webhooks/forms/contact-form",
            **signed_multipart(fields, [(HOSTILE_NAME, letter, "application/pdf")]),
        )
    assert answer.status_code == 202
    [record] = await reader.read(1)
    event = json.loads(record.value)
    attachment: dict[str, Any] = event["data"]["attachments"][0]
    attachment["reference"] = event["subject"]
    attachment["raw"] = event["data"]["source_message"]["uri"]
    return attachment


async def get(url: str, sha256: str, token: str | None = TOKEN, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.get(f"/v1/objects/{sha256}", headers=headers)


async def test_a_consumer_reads_an_attachment_by_its_hash_with_its_name_and_type(
    served: tuple[str, GatewaySettings],
) -> None:
    url, settings = served
    attachment = await attachment_of_a_new_complaint(url, settings)
    answer = await get(url, attachment["sha256"])
    assert answer.status_code == 200
    assert answer.content == LETTER
    assert hashlib.sha256(answer.content).hexdigest() == attachment["sha256"]
    assert answer.headers["etag"] == f'"{attachment["sha256"]}"'
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["x-content-type-options"] == "nosniff"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert '\\"' not in disposition
    assert "filename*=UTF-8''" in disposition
    assert "X-Evil" not in answer.headers


async def test_without_a_valid_token_401_and_an_unknown_object_404_as_problems(
    served: tuple[str, GatewaySettings],
) -> None:
    url, settings = served
    attachment = await attachment_of_a_new_complaint(url, settings)
    for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
        refused = await get(url, attachment["sha256"], token=token)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    basic = await get(url, attachment["sha256"], token=None, Authorization=f"Basic {TOKEN}")
    assert basic.status_code == 401
    for unknown in ("0" * 64, "not-a-hash", attachment["sha256"].upper()):
        missing = await get(url, unknown)
        assert missing.status_code == 404
        assert missing.json()["status"] == 404


async def test_ranges_and_conditional_requests(served: tuple[str, GatewaySettings]) -> None:
    url, settings = served
    sha256 = (await attachment_of_a_new_complaint(url, settings))["sha256"]
    size = len(LETTER)
    cases = {
        "bytes=0-99": (206, LETTER[:100], f"bytes 0-99/{size}"),
        "bytes=100-": (206, LETTER[100:], f"bytes 100-{size - 1}/{size}"),
        "bytes=-10": (206, LETTER[-10:], f"bytes {size - 10}-{size - 1}/{size}"),
        f"bytes=5-{size + 500}": (206, LETTER[5:], f"bytes 5-{size - 1}/{size}"),
        "bytes=0-0,5-9": (200, LETTER, None),  # several ranges: the whole object
    }
    for header, (status, content, content_range) in cases.items():
        answer = await get(url, sha256, Range=header)
        assert (answer.status_code, answer.content) == (status, content), header
        assert answer.headers.get("content-range") == content_range, header
    past = await get(url, sha256, Range=f"bytes={size}-")
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    unchanged = await get(url, sha256, **{"If-None-Match": f'"{sha256}"'})
    assert (unchanged.status_code, unchanged.content) == (304, b"")


async def test_the_raw_copy_is_served_too_and_every_read_is_on_record(
    served: tuple[str, GatewaySettings],
) -> None:
    url, settings = served
    letter = LETTER + uuid.uuid4().bytes  # bytes of this complaint's only
    attachment = await attachment_of_a_new_complaint(url, settings, letter)
    raw_sha256 = attachment["raw"].rsplit("/", 1)[1]
    raw = await get(url, raw_sha256, token="t-2")
    assert raw.status_code == 200
    assert hashlib.sha256(raw.content).hexdigest() == raw_sha256
    await get(url, attachment["sha256"], Range="bytes=0-9")
    state = SqliteStateStore(settings.data_dir / "state")
    try:
        reads = await state.reads_of(attachment["reference"])
    finally:
        await state.close()
    assert [(r.consumer, r.sha256, r.byte_range) for r in reads] == [
        ("other", raw_sha256, None),
        ("dossiers", attachment["sha256"], "0-9"),
    ]


async def test_an_object_altered_on_disk_is_never_served_whole(
    served: tuple[str, GatewaySettings],
) -> None:
    url, settings = served
    attachment = await attachment_of_a_new_complaint(url, settings)
    stored = Path(attachment["uri"].removeprefix("file://"))
    stored.write_bytes(LETTER[:-1] + b"!")  # one byte changed behind the gateway's back
    with pytest.raises(httpx.RemoteProtocolError):  # the answer ends short of its length
        await get(url, attachment["sha256"])
    part = await get(url, attachment["sha256"], Range="bytes=0-9")  # a part cannot be checked
    assert part.content == LETTER[:10]
