"""Signed submissions, as a form builder sends them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from gateway.web.signature import sign


def signed_json(fields: dict[str, Any], secret: str = "s3cret", **headers: str) -> dict[str, Any]:
    body = json.dumps(fields).encode()
    return {
        "content": body,
        "headers": {
            "content-type": "application/json",
            "X-Gateway-Signature": sign(body, secret),
            "Idempotency-Key": str(uuid.uuid4()),
            **headers,
        },
    }


def signed_multipart(
    fields: dict[str, str], files: list[tuple[str, bytes, str]], secret: str = "s3cret"
) -> dict[str, Any]:
    request = httpx.Request(
        "POST",
        "http://form.example",
        data=fields,
        files=[("attachments", file) for file in files],
    )
    body = request.read()
    return {
        "content": body,
        "headers": {
            "content-type": request.headers["content-type"],
            "X-Gateway-Signature": sign(body, secret),
            "Idempotency-Key": str(uuid.uuid4()),
        },
    }
