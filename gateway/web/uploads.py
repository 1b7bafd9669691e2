"""Request bodies read once, bounded, hashed and checked against the signature as they stream,
spooled to a temporary file (never whole in memory); then parsed as JSON or multipart, and each
file streamed into the claim-check store.

Nothing reaches the claim-check store before the signature is verified.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

from fastapi import Request
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from gateway.channels.raw import safe_filename
from gateway.events.common import Attachment
from gateway.jsondepth import DepthScanner, TooDeep
from gateway.store.claims import ClaimStore, StoredObject
from gateway.web.depth import too_deep
from gateway.web.problems import ProblemError
from gateway.web.signature import BodyVerifier

SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024
MAX_FIELD_BYTES = 256 * 1024  # one text field (the complaint's body is far below this)


@dataclass
class SpooledBody:
    """The raw body, and the forms parsed from it (closed with it)."""

    file: IO[bytes]
    size: int
    sha256: str
    forms: list[FormData] = field(default_factory=list)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK):
            yield chunk

    def read_all(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    async def close(self) -> None:
        for form in self.forms:
            await form.close()
        self.file.close()


def too_large(detail: str) -> ProblemError:
    return ProblemError(413, "too-large", "Request or file too large", detail)


async def spool_body(
    request: Request, limit: int, verifier: BodyVerifier | None, max_json_depth: int | None = None
) -> SpooledBody:
    """``max_json_depth``: the body is JSON, refused (400 ``too-deep``) as soon as a chunk nests
    deeper, before anything parses it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"the request is larger than {limit} bytes")
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    digest, size = hashlib.sha256(), 0
    depth = DepthScanner(max_json_depth) if max_json_depth is not None else None
    try:
        async for chunk in request.stream():
            size += len(chunk)
            _check_limit(size, limit)
            if depth is not None:
                _check_depth(depth, chunk)
            digest.update(chunk)
            if verifier is not None:
                verifier.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return SpooledBody(spool, size, digest.hexdigest())


def _check_depth(depth: DepthScanner, chunk: bytes) -> None:
    try:
        depth.feed(chunk)  # a chunk of the server's (some 64 kB): well under a millisecond
    except TooDeep:
        raise too_deep(depth.limit) from None


def _check_limit(size: int, limit: int) -> None:
    if size > limit:
        raise too_large(f"the request is larger than {limit} bytes")


def parse_json(body: SpooledBody) -> dict[str, Any]:
    """The JSON object of a body spooled with ``max_json_depth``. Read as UTF-8 (RFC 8259 §8.1),
    as the depth scan read it: not UTF-16 or 32, which ``json.loads`` of bytes would guess."""
    try:
        parsed = json.loads(body.read_all().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "malformed", "Malformed request", f"invalid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ProblemError(400, "malformed", "Malformed request", "the JSON body must be an object")
    return parsed


async def parse_multipart(headers: Headers, body: SpooledBody, max_files: int) -> FormData:
    parser = MultiPartParser(
        headers, body.chunks(), max_files=max_files, max_fields=200, max_part_size=MAX_FIELD_BYTES
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ProblemError(400, "malformed", "Malformed request", exc.message) from None
    body.forms.append(form)
    return form


def form_parts(form: FormData) -> tuple[dict[str, str], list[UploadFile]]:
    """A parsed form's text fields, and the files sent under ``attachments``."""
    values = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    uploads = [
        value
        for key, value in form.multi_items()
        if key == "attachments" and isinstance(value, UploadFile) and value.filename
    ]
    return values, uploads


def check_upload_sizes(uploads: list[UploadFile], max_file_bytes: int) -> None:
    for upload in uploads:
        if upload.size is not None and upload.size > max_file_bytes:
            name = safe_filename(upload.filename)
            raise too_large(f"file {name!r} is larger than {max_file_bytes} bytes")


async def store_upload(store: ClaimStore, upload: UploadFile, max_file_bytes: int) -> Attachment:
    """Stream one uploaded file into the claim-check store; 413 naming it when over the limit."""
    name = safe_filename(upload.filename)
    check_upload_sizes([upload], max_file_bytes)
    stored: StoredObject = await store.put_stream(_read(upload), max_size=max_file_bytes)
    return Attachment(
        filename=name,
        media_type=upload.content_type or "application/octet-stream",
        size=stored.size,
        sha256=stored.sha256,
        uri=stored.uri,
    )


async def _read(upload: UploadFile) -> AsyncIterator[bytes]:
    await upload.seek(0)
    while chunk := await upload.read(CHUNK):
        yield chunk
