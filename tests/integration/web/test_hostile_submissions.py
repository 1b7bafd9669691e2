"""Hostile but correctly signed submissions: whatever the fields hold, the gateway answers with
a 2xx or a 4xx problem, never a 500; hostile file names are cut to a harmless base name."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.events import topics
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.support.consumer import TopicReader
from tests.support.http import SECRETS, gateway_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIELDS = [
    "name",
    "email",
    "phone",
    "postal_address",
    "health_insurance_number",
    "kind",
    "subject",
    "body",
    "anonymous",
    "language",
    "represented_person",
    "reference",
]
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def served(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with gateway_process(
        kafka_settings.bootstrap,
        tmp_path_factory.mktemp("hostile-data"),
        GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS),
        GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE="1000000",
    ) as (url, _):
        yield url


def post(url: str, body: bytes, content_type: str | bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/webhooks/forms/contact-form",
        content=body,
        headers={
            "content-type": content_type,
            "X-Gateway-Signature": sign(body, "s3cret"),
            "Idempotency-Key": str(uuid.uuid4()),
        },
        timeout=30,
    )


def test_signed_json_of_any_shape_never_makes_a_500(served: str) -> None:
    @given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=8))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def submit(fields: dict[str, object]) -> None:
        response = post(served, json.dumps(fields).encode(), "application/json")
        assert response.status_code in {202, 400, 409, 413, 415, 422}, response.text

    submit()


def test_signed_bodies_that_are_not_json_objects_are_400(served: str) -> None:
    for body in [b"", b"[]", b"null", b'"text"', b"{", b"\xff\xfe", b"1e999999"]:
        assert post(served, body, "application/json").status_code == 400


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("lettre\x00.pdf", "lettre%00.pdf"),  # the client percent-encodes the NUL: no NUL kept
        ("a" * 1000 + ".pdf", "a" * 255),
        ("...", "attachment"),
    ],
)
def test_hostile_file_names_are_cut_to_a_base_name(
    served: str, kafka_settings: KafkaSettings, sent: str, kept: str
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    asyncio.run(reader.mark())
    request = httpx.Request(
        "POST",
        "http://x",
        data={"body": "Voir la pièce jointe"},
        files=[("attachments", (sent, b"%PDF-1.4", "application/pdf"))],
    )
    body = request.read()
    response = post(served, body, request.headers["content-type"])
    assert response.status_code == 202, response.text
    event = json.loads(asyncio.run(reader.read(1))[0].value)
    assert event["data"]["attachments"][0]["filename"] == kept


part_headers = st.lists(
    st.sampled_from(
        [
            'Content-Disposition: form-data; name="body"',
            'Content-Disposition: form-data; name="attachments"; filename="../../x.pdf"',
            "Content-Disposition: form-data; name=\"attachments\"; filename*=utf-8''%00%2F..",
            'Content-Disposition: form-data; name="email"',
            'Content-Disposition: form-data; name="' + "n" * 2000 + '"',
            "Content-Disposition: attachment",
            "Content-Type: application/pdf",
            "Content-Type: text/plain; charset=x-unknown",
            "Content-Transfer-Encoding: base64",
            "X-Junk: \udcff",
        ]
    )
    | st.text(max_size=80),
    max_size=4,
)
parts = st.tuples(part_headers, st.binary(max_size=400))


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Multipart bodies as a hostile client writes them: odd headers, a boundary that appears
    in a part, a missing closing line, garbage before and after, a lying boundary parameter."""
    boundary = draw(st.sampled_from(["b", "----x", "a" * 70, "é", ""]))
    chunks = [draw(st.binary(max_size=20))]
    for headers, content in draw(st.lists(parts, max_size=5)):
        head = "\r\n".join(headers).encode("utf-8", "surrogateescape")
        chunks.append(b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n")
    if draw(st.booleans()):
        chunks.append(b"--" + boundary.encode() + b"--\r\n")
    chunks.append(draw(st.binary(max_size=20)))
    declared = draw(st.sampled_from([boundary, boundary + "x", '"' + boundary + '"', ""]))
    return b"".join(chunks), f"multipart/form-data; boundary={declared}".encode()


def test_signed_multipart_bodies_of_any_shape_never_make_a_500(served: str) -> None:
    @given(multipart_bodies())
    @settings(deadline=None, suppress_health_check=list(HealthCheck))
    def submit(request: tuple[bytes, bytes]) -> None:
        body, content_type = request
        response = post(served, body, content_type)
        assert response.status_code in {202, 400, 409, 413, 415, 422}, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")

    submit()
