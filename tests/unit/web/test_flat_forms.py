"""Form bodies cannot nest: python-multipart reads one level of parts (a part that is itself
multipart is a value, not parsed), URL-encoded bodies (Twilio's) are flat pairs whatever the
brackets in their names, and ``nest_fields`` nests one level at most."""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.requests import Request

from gateway.channels.webform import nest_fields
from gateway.web.uploads import SpooledBody, form_parts, parse_multipart


def nested_multipart(depth: int, width: int) -> bytes:
    """A multipart/mixed entity ``depth`` levels deep, ``width`` plain parts at each level."""
    entity = b"Content-Type: text/plain\r\n\r\nAu fond."
    for level in range(depth):
        mark = b"m%d" % level
        plain = b"--" + mark + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        entity = (
            b'Content-Type: multipart/mixed; boundary="'
            + mark
            + b'"\r\n\r\n'
            + plain * width
            + b"--"
            + mark
            + b"\r\n"
            + entity
            + b"\r\n--"
            + mark
            + b"--"
        )
    return entity


def form_data(parts: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        b"".join(b"--%s\r\n%s\r\n" % (boundary.encode(), part) for _name, part in parts)
        + b"--%s--\r\n" % boundary.encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


async def spooled(body: bytes) -> SpooledBody:
    spool = tempfile.SpooledTemporaryFile()  # noqa: SIM115
    spool.write(body)
    return SpooledBody(spool, len(body), "0" * 64)


@given(st.integers(1, 1_000), st.integers(0, 3), st.booleans())  # under 256 kB a field
@settings(max_examples=25, deadline=None)
async def test_given_parts_nested_deep_and_wide_then_the_form_is_one_level_of_values(
    depth: int, width: int, as_file: bool
) -> None:
    entity = nested_multipart(depth, width)
    head, _, inner = entity.partition(b"\r\n\r\n")
    filename = b'; filename="deep.eml"' if as_file else b""
    name = b"attachments" if as_file else b"body"
    part = b'Content-Disposition: form-data; name="%s"%s\r\n%s\r\n\r\n%s' % (
        name,
        filename,
        head,
        inner,
    )
    body, content_type = form_data(
        [
            ("subject", b'Content-Disposition: form-data; name="subject"\r\n\r\nPlainte'),
            ("deep", part),
        ]
    )
    spool = await spooled(body)
    try:
        form = await parse_multipart(Headers({"content-type": content_type}), spool, max_files=10)
        values, uploads = form_parts(form)
        assert values["subject"] == "Plainte"
        if as_file:
            assert [upload.filename for upload in uploads] == ["deep.eml"]
        else:
            assert values["body"].encode().count(b"multipart/mixed") == depth - 1
        assert depth_of(nest_fields(values)) <= 1
    finally:
        await spool.close()


@given(st.integers(1, 5_000), st.sampled_from(["[k]", ".k"]))
@settings(max_examples=25, deadline=None)
def test_given_field_names_nested_deep_then_nest_fields_nests_one_level(
    depth: int, step: str
) -> None:
    nested = nest_fields({"represented_person" + step * depth: "x", "name": "Ann"})
    assert depth_of(nested) <= 2


@given(st.integers(1, 5_000), st.integers(0, 50))
@settings(max_examples=25, deadline=None)
async def test_given_a_url_encoded_body_with_deep_bracketed_names_then_it_is_flat_pairs(
    depth: int, width: int
) -> None:
    """What the Twilio webhook reads with ``request.form()``."""
    pairs = b"&".join(
        [b"From=%2B15145550142", b"a" + b"%5Bb%5D" * depth + b"=1", *([b"w=2"] * width)]
    )
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": pairs, "more_body": False}

    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
    form = await request.form()
    assert all(isinstance(value, str) for _, value in form.multi_items())
    assert form["a" + "[b]" * depth] == "1"
    assert len(form.multi_items()) == 2 + width
