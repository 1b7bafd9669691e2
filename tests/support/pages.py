"""Posting the gateway's HTML forms as a browser does: the page first (its CSRF cookie lands in
the client's jar), then the form with the page's token as its first field."""

from __future__ import annotations

import re
from typing import Any

import httpx

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


async def page_token(client: httpx.AsyncClient, path: str) -> str:
    """GET ``path`` (its cookie kept by ``client``); the token its forms carry."""
    page = await client.get(path)
    found = TOKEN.search(page.text)
    assert found is not None, f"no CSRF token on {path}: {page.status_code}"
    return found.group(1)


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, str], **request: Any
) -> httpx.Response:
    """Open ``page``, then post ``data`` to ``action`` as its form does (token first)."""
    token = await page_token(client, page)
    return await client.post(action, data={"csrf_token": token, **data}, **request)
