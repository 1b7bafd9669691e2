"""``GET /asyncapi.json``: the AsyncAPI document of the topics, as checked in."""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.components import Components
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.web.app import create_app
from tests.conftest import REPO


async def test_the_asyncapi_document_is_served_as_json_as_checked_in(tmp_path: Path) -> None:
    """GIVEN the app WHEN /asyncapi.json is read THEN it is the checked-in document, as JSON."""
    settings = GatewaySettings(kafka=KafkaSettings(bootstrap="127.0.0.1:1"), data_dir=tmp_path)
    components = await Components.open(settings, KafkaPublisher(settings.kafka))
    transport = httpx.ASGITransport(app=create_app(components))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/asyncapi.json")
        openapi = (await client.get("/openapi.json")).json()
    await components.close()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == (REPO / "schemas" / "asyncapi.json").read_text(encoding="utf-8")
    assert response.json()["asyncapi"] == "3.0.0"
    assert (
        "application/json"
        in openapi["paths"]["/asyncapi.json"]["get"]["responses"]["200"]["content"]
    )
