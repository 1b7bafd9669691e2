"""``GET /v1/objects/{sha256}``: the bytes of a stored raw input or attachment, for the case
systems that read ``complaints.v1`` on other machines (the event's ``uri`` may be a local
``file://`` path they cannot open; with an S3 store they may read the bucket directly).

- ``Authorization: Bearer <token>`` of ``GATEWAY_CONSUMER_TOKENS`` (each compared in constant
  time, all of them every time): 401 otherwise, and always when no consumer is configured.
- 404 for an object the gateway does not have (or an address that is not a SHA-256).
- ``ETag`` is the SHA-256 (``If-None-Match`` gives 304); ``Content-Type`` and a safe
  ``Content-Disposition`` come from the object's catalog entry (its file name and type as
  received); ``Range: bytes=a-b`` (one range) gives 206, an unsatisfiable one 416 (RFC 9110).
- A whole object is checked against its hash as it streams: altered bytes end the answer short
  of its ``Content-Length``, and are never served whole.
- Each read is recorded (consumer, object, range, time): ``ObjectCatalog.reads_of``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import SecretStr

from gateway.errors import ClaimNotFound
from gateway.store.catalog import CatalogEntry, ObjectRead
from gateway.web.context import WebContext
from gateway.web.problems import ProblemError, problem_responses

log = structlog.get_logger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_UNSAFE_IN_QUOTES = re.compile(r'[^\x20-\x7e]|["\\]')


def objects_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(tags=["objects"])

    @router.get(
        "/v1/objects/{sha256}",
        response_class=Response,
        responses={
            200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
            206: {"description": "the bytes of the range asked for"},
            304: {"description": "unchanged (If-None-Match)"},
            416: {"description": "range not satisfiable"},
            **problem_responses(401, 404),
        },
    )
    async def read_object(request: Request, sha256: str) -> Response:
        """A stored raw input or attachment, by the SHA-256 its event gives."""
        consumer = consumer_of(request.headers.get("authorization"), ctx.settings.consumer_tokens)
        if consumer is None:
            raise ProblemError(
                401,
                "unauthorized",
                "A consumer's bearer token is needed",
                headers={"WWW-Authenticate": 'Bearer realm="objects"'},
            )
        if not _SHA256.match(sha256):
            raise _not_found()
        try:
            size = await ctx.claims.size(sha256)
        except ClaimNotFound:
            raise _not_found() from None
        etag = f'"{sha256}"'
        if request.headers.get("if-none-match") in (etag, "*"):
            return Response(status_code=304, headers={"ETag": etag})
        entry = await ctx.components.backend.catalog.catalog_entry(sha256)
        headers = _headers(sha256, size, entry)
        try:
            wanted = byte_range(request.headers.get("range"), size)
        except RangeNotSatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        start, end = wanted if wanted is not None else (0, size)
        shown = f"{start}-{end - 1}" if wanted is not None else None
        read = ObjectRead(consumer, sha256, shown, datetime.now(UTC))
        await ctx.components.backend.catalog.record_read(read)
        log.info("objects.read", consumer=consumer, sha256=sha256, byte_range=shown)
        headers["Content-Length"] = str(end - start)
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        body = _chunks(ctx, sha256, start, end) if request.method != "HEAD" else _nothing()
        return StreamingResponse(
            body,
            status_code=206 if wanted is not None else 200,
            headers=headers,
            media_type=headers.pop("Content-Type"),
        )

    return router


def consumer_of(authorization: str | None, tokens: dict[str, SecretStr]) -> str | None:
    """The consumer whose token the header carries. Every token is compared, in constant time,
    whatever matched before: the time taken tells nothing of which token came close."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    offered = given.strip().encode()
    found = None
    for name, token in tokens.items():
        if hmac.compare_digest(offered, token.get_secret_value().encode()):
            found = name
    return found


class RangeNotSatisfiable(Exception):
    """The range asked for starts past the end of the object (416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end excluded) of a single ``Range: bytes=`` request; None to send the whole
    object (no header, several ranges, or one that cannot be read: RFC 9110 14.2 lets a server
    ignore those); RangeNotSatisfiable when the range starts past the end."""
    found = _RANGE.match((header or "").strip())
    if found is None or found.group(0) == "bytes=-":
        return None
    first, last = found.group(1), found.group(2)
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, end


def _headers(sha256: str, size: int, entry: CatalogEntry | None) -> dict[str, str]:
    media_type = entry.media_type.lower() if entry else ""
    filename = entry.filename if entry else sha256
    return {
        "Content-Type": media_type if _MEDIA_TYPE.match(media_type) else "application/octet-stream",
        "Content-Disposition": content_disposition(filename),
        "ETag": f'"{sha256}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",  # personal data: no shared cache keeps it
        "X-Content-Type-Options": "nosniff",
        "X-Object-Size": str(size),
    }


def content_disposition(filename: str) -> str:
    """``attachment`` (never shown inline by a browser), the name in ASCII for old clients and
    whole in UTF-8 (RFC 6266, RFC 8187); no path, quote or control character survives."""
    name = filename.replace("/", "_").replace("\\", "_").strip() or "attachment"
    ascii_name = _UNSAFE_IN_QUOTES.sub("_", name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _chunks(ctx: WebContext, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
    async for chunk in ctx.claims.read(sha256, start, end):
        yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator with nothing in it


def _not_found() -> ProblemError:
    return ProblemError(404, "not-found", "No such object", "no stored object has this SHA-256")
