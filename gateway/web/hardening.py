"""Every page hardened, every form post checked: ``HardenedPages`` (ASGI middleware).

**Headers.** Every answer says ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
no-referrer`` (links mailed to people carry tokens: the next site must not see them). Every HTML
page also gets a Content-Security-Policy that allows no script at all and styles only from the
gateway's own files (``default-src 'none'; style-src 'self'; img-src 'self'; form-action
'self'; base-uri 'none'; frame-ancestors 'none'``) and ``X-Frame-Options: DENY``: an injected
tag runs nothing, and no other site can frame a page to make a person click in it.

**CSRF** (forms that work without JavaScript): a signed double submit.

- The first HTML page a browser gets sets the cookie ``gateway_csrf`` (but the office's pages,
  which need none): a random nonce,
  ``HttpOnly``, ``SameSite=Strict`` (never sent with another site's request), ``Secure`` over
  HTTPS, for the session.
- Each form carries, as its *first* field, ``csrf_token`` = HMAC-SHA256 of that nonce with a
  secret of the installation (``csrf-key``, shared by the replicas): templates write it with
  ``{{ csrf_field() }}``, for the request being answered (``csrf_token()``).
- A ``POST`` a page of another site could forge (a form's types: urlencoded, multipart, plain
  text) must carry the token of its cookie's nonce in its first field, read from the start of
  the body without holding the rest (a file may follow); otherwise it is refused with a page
  saying what happened (403) and nothing of it reaches the route. Not concerned: the signed
  webhooks (``/v1/webhooks/...``: HMAC or Twilio signatures), JSON bodies (a foreign page cannot
  send one without a CORS preflight), requests with an ``Authorization`` header (a page cannot
  add one), and the office's pages (``/admin/...``: their own session-bound token,
  ``gateway.web.admin_session``).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "gateway_csrf"
FIELD = "csrf_token"
SECRET = "csrf-key"  # noqa: S105 (the name the installation secret is kept under)
HEAD_BYTES = 4096  # the start of a body the token must be found in
EXEMPT = ("/v1/webhooks/", "/admin/")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
EVERY_ANSWER = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
HTML_ONLY = ((b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"))
_REPLACED = {name for name, _ in EVERY_ANSWER + HTML_ONLY}

_token: contextvars.ContextVar[str] = contextvars.ContextVar("csrf_token", default="")
KeySource = Callable[[], Awaitable[bytes]]
Refusal = Callable[[Scope], Awaitable[tuple[int, dict[str, str], bytes]]]


def csrf_token() -> str:
    """The token the forms of the page being answered carry."""
    return _token.get()


def csrf_field() -> Markup:
    """The hidden field, to put first in every form."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, _token.get())


def token_of(key: bytes, nonce: str) -> str:
    return hmac.new(key, b"csrf\n" + nonce.encode(), hashlib.sha256).hexdigest()


class HardenedPages:
    """``key``: the installation's secret, fetched once; ``refused``: the page answered to a
    forged post (status, headers, HTML); ``secure``: whether a request came over HTTPS."""

    def __init__(
        self,
        app: ASGIApp,
        key: KeySource,
        refused: Refusal,
        secure: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self._key_source = key
        self._key: bytes | None = None
        self._refused = refused
        self._secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._key is None:
            self._key = await self._key_source()
        nonce = _cookie(scope)
        issue = nonce is None and not scope["path"].startswith(EXEMPT)
        nonce = nonce or secrets.token_urlsafe(18)
        if _checked(scope):
            receive, token = await _first_field(scope, receive)
            if issue or token is None or not hmac.compare_digest(token, token_of(self._key, nonce)):
                await self._refuse(scope, send, nonce if issue else None)
                return
        reset = _token.set(token_of(self._key, nonce))
        try:
            await self.app(scope, receive, self._sending(scope, send, nonce if issue else None))
        finally:
            _token.reset(reset)

    def _sending(self, scope: Scope, send: Send, new_nonce: str | None) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(scope, message.get("headers", []), new_nonce)
            await send(message)

        return sending

    def _headers(
        self, scope: Scope, headers: list[tuple[bytes, bytes]], new_nonce: str | None
    ) -> list[tuple[bytes, bytes]]:
        kept = [(name, value) for name, value in headers if name.lower() not in _REPLACED]
        kept += EVERY_ANSWER
        html = any(
            name.lower() == b"content-type" and value.startswith(b"text/html")
            for name, value in headers
        )
        if html:
            kept += HTML_ONLY
            if new_nonce is not None:
                kept.append((b"set-cookie", self._cookie_header(scope, new_nonce)))
        return kept

    def _cookie_header(self, scope: Scope, nonce: str) -> bytes:
        secure = "; Secure" if self._secure(scope) else ""
        return f"{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict{secure}".encode()

    async def _refuse(self, scope: Scope, send: Send, new_nonce: str | None) -> None:
        """The page saying the form was not taken (and a cookie to take the next one)."""
        if self._key is not None and new_nonce is not None:
            _token.set(token_of(self._key, new_nonce))
        status, headers, body = await self._refused(scope)
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        start = {"type": "http.response.start", "status": status, "headers": raw}
        await self._sending(scope, send, new_nonce)(start)
        await send({"type": "http.response.body", "body": body})


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 (a malformed cookie header is no cookie)
                return None
            if COOKIE in jar and re.fullmatch(r"[A-Za-z0-9_-]{16,64}", jar[COOKIE].value):
                return jar[COOKIE].value
    return None


def _checked(scope: Scope) -> bool:
    """A post another site's page could make a browser send: a form's content type, no
    ``Authorization`` (a page cannot add one)."""
    if scope["method"] != "POST" or scope["path"].startswith(EXEMPT):
        return False
    if _header(scope, b"authorization"):
        return False
    return _header(scope, b"content-type").split(";", 1)[0].strip().lower() in FORM_TYPES


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


async def _first_field(scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
    """The token of the body's first field, and a ``receive`` that gives the app the whole
    body again (what was read, then the rest as it comes)."""
    read: list[Message] = []
    head = b""
    more = True
    while more and len(head) < HEAD_BYTES:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            break
        head += message.get("body", b"")
        more = message.get("more_body", False)
    token = _token_in(_header(scope, b"content-type"), head[:HEAD_BYTES])

    async def replayed() -> Message:
        return read.pop(0) if read else await receive()

    return replayed, token


_URLENCODED = re.compile(rb"^csrf_token=([0-9a-f]{64})(?:&|\r?\n|$)")
_PART = re.compile(
    rb'^--(?P<boundary>[^\r\n]+)\r\nContent-Disposition: form-data; name="csrf_token"\r\n'
    rb"(?:[^\r\n]+\r\n)*\r\n(?P<token>[0-9a-f]{64})\r\n--(?P=boundary)",
    re.IGNORECASE,
)


def _token_in(content_type: str, head: bytes) -> str | None:
    if content_type.lower().startswith("multipart/form-data"):
        found = _PART.match(head)
        return found.group("token").decode() if found else None
    found = _URLENCODED.match(head)
    return found.group(1).decode() if found else None


def document_refusals(schema: dict[str, Any]) -> None:
    """In an OpenAPI document: every post a form can make answers 403 without its token."""
    refusal = {
        "description": "The form's CSRF token is missing or wrong: nothing was sent (a page)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    for path, operations in schema.get("paths", {}).items():
        post = operations.get("post")
        if path.startswith(EXEMPT) or post is None:
            continue
        content = post.get("requestBody", {}).get("content", {})
        if any(kind in content for kind in FORM_TYPES):
            post.setdefault("responses", {}).setdefault("403", refusal)
