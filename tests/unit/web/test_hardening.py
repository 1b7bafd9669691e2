"""``HardenedPages`` as ASGI middleware, alone: the token read from the start of a body as it
arrives in pieces, and the whole body then handed to the route unchanged."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.web.hardening import COOKIE, HEAD_BYTES, HardenedPages, csrf_token, token_of

KEY = b"k" * 32
NONCE = "n" * 24
TOKEN = token_of(KEY, NONCE)


class Echo:
    """A route that answers the SHA-256 of the body it received, and the token its page
    would carry."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        digest, more = hashlib.sha256(), True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            more = message.get("more_body", False)
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": f"{digest.hexdigest()} {csrf_token()}".encode()}
        )


async def key() -> bytes:
    return KEY


async def refused(_scope: Scope) -> tuple[int, dict[str, str], bytes]:
    return 403, {"content-type": "text/html; charset=utf-8"}, b"refused"


async def call(body: bytes, content_type: str, cookie: str | None = NONCE) -> tuple[int, bytes]:
    headers = [(b"content-type", content_type.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/complaints/new"}
    scope |= {"headers": headers, "query_string": b"", "scheme": "http"}
    pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
        for n, piece in enumerate(pieces)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await HardenedPages(Echo(), key, refused, lambda _scope: False)(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def multipart(*fields: tuple[str, bytes]) -> bytes:
    parts = [
        b'--b\r\nContent-Disposition: form-data; name="'
        + name.encode()
        + b'"\r\n\r\n'
        + value
        + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + b"--b--\r\n"


async def test_given_the_token_first_then_a_large_body_reaches_the_route_whole() -> None:
    body = multipart(("csrf_token", TOKEN.encode()), ("attachments", b"%PDF" * 300_000))
    status, answer = await call(body, "multipart/form-data; boundary=b")
    assert status == 200
    assert answer.decode() == f"{hashlib.sha256(body).hexdigest()} {TOKEN}"
    form = f"csrf_token={TOKEN}&body=".encode() + b"x" * 20_000
    status, answer = await call(form, "application/x-www-form-urlencoded")
    assert (status, answer.split()[0].decode()) == (200, hashlib.sha256(form).hexdigest())


@pytest.mark.parametrize(
    "body",
    [
        multipart(("body", b"x"), ("csrf_token", TOKEN.encode())),  # not first
        multipart(("csrf_token", token_of(KEY, "m" * 24).encode())),  # another cookie's
        multipart(("csrf_token", b"0" * 64)),
        b"--b\r\n" + b"x" * HEAD_BYTES + multipart(("csrf_token", TOKEN.encode())),
        b"",
    ],
)
async def test_given_no_right_token_first_then_refused_and_the_route_never_called(
    body: bytes,
) -> None:
    assert await call(body, "multipart/form-data; boundary=b") == (403, b"refused")


async def test_given_no_cookie_then_refused_even_with_a_token() -> None:
    body = multipart(("csrf_token", TOKEN.encode()))
    assert await call(body, "multipart/form-data; boundary=b", cookie=None) == (403, b"refused")
