"""What a person typed is shown back escaped: no HTML or script from a field reaches a page."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from gateway.components import Components
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.web.app import create_app
from tests.support.pages import post_form

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


async def test_hostile_values_are_escaped_when_the_form_comes_back(tmp_path: Path) -> None:
    settings = GatewaySettings(
        kafka=KafkaSettings(bootstrap="127.0.0.1:1"),
        data_dir=tmp_path,  # never reached: 422
    )
    components = await Components.open(settings, KafkaPublisher(settings.kafka))
    transport = httpx.ASGITransport(app=create_app(components))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await post_form(
            client,
            "/complaints/new?lang=en",
            "/complaints/new?lang=en",
            {
                "submission_id": str(uuid.uuid4()),
                "name": HOSTILE,
                "subject": HOSTILE,
                "email": "not an address",
                "body": HOSTILE,
            },
            files=[("attachments", (f"{HOSTILE}.pdf", b"%PDF", "application/pdf"))],
        )
    await components.close()
    assert response.status_code == 422  # the email is invalid and consent is missing
    assert "<script>" not in response.text
    assert "<img" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
