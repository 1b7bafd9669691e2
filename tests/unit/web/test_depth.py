"""The depth check of the web layer: the webhook's spooling stops at the first chunk too deep,
and every route whose body FastAPI parses as JSON checks its depth first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.requests import Request

from gateway.components import Components
from gateway.settings import GatewaySettings
from gateway.web.app import create_app
from gateway.web.depth import is_json, parses_json_body
from gateway.web.problems import ProblemError
from gateway.web.uploads import spool_body

CHUNK = 64 * 1024


class ChunkedRequest(Request):
    """A request whose body arrives in chunks; counts those read."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__({"type": "http", "method": "POST", "headers": []})
        self.chunks = chunks
        self.read_count = 0

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read_count += 1
            yield chunk


async def test_a_deep_body_stops_being_read_at_the_first_chunk_too_deep() -> None:
    """50,000 nested arrays in a 30 MB body: refused after one chunk, nothing more spooled."""
    request = ChunkedRequest([b"[" * CHUNK] * 480)
    with pytest.raises(ProblemError) as refused:
        await spool_body(request, 31 * 1024 * 1024, None, max_json_depth=64)
    assert request.read_count == 1
    assert refused.value.problem.type == "urn:intake-gateway:problem:too-deep"
    assert refused.value.problem.status == 400
    assert "64" in (refused.value.problem.detail or "")


async def test_a_body_spooled_without_a_depth_limit_is_not_scanned() -> None:
    """Multipart bodies (the reference form, files) are not JSON: brackets mean nothing there."""
    request = ChunkedRequest([b"[" * CHUNK] * 3)
    body = await spool_body(request, 1024 * 1024, None)
    assert body.size == 3 * CHUNK
    await body.close()


@pytest.mark.parametrize(
    ("content_type", "parsed"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        (None, True),
        ("multipart/form-data; boundary=x", False),
        ("application/x-www-form-urlencoded", False),
        ("text/plain", False),
    ],
)
def test_the_bodies_checked_are_those_fastapi_parses_as_json(
    content_type: str | None, parsed: bool
) -> None:
    assert is_json(content_type) is parsed


async def test_every_route_whose_body_fastapi_parses_as_json_checks_its_depth(
    tmp_path: Path,
) -> None:
    """A new JSON endpoint declared on a router without ``depth_checked_route`` fails here."""
    settings = GatewaySettings.model_validate({"data_dir": tmp_path})
    components = await Components.open(settings, None)  # type: ignore[arg-type]
    try:
        routes = [r for r in create_app(components).routes if isinstance(r, APIRoute)]
    finally:
        await components.close()
    json_routes = [route for route in routes if parses_json_body(route)]
    assert {route.path for route in json_routes} >= {"/v1/verify/sms/start", "/v1/verify/sms/check"}
    unchecked = [route.path for route in json_routes if not hasattr(route, "max_json_depth")]
    assert unchecked == []
