"""Health, readiness and metrics of the HTTP server, over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest

from gateway.settings import KafkaSettings
from tests.integration.test_publisher import complaint
from tests.support.http import running_http
from tests.support.kafka import free_port

pytestmark = pytest.mark.integration


async def test_given_a_reachable_broker_then_ready_and_metrics_count_publishes(
    kafka_settings: KafkaSettings,
) -> None:
    async with running_http(kafka_settings) as (url, publisher):
        await publisher.publish(complaint("webform:metrics-probe"))
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            metrics = (await client.get("/metrics")).text
    published = [
        line
        for line in metrics.splitlines()
        if line.startswith('gateway_events_published_total{topic="complaints.v1"')
    ]
    assert published
    assert float(published[0].rsplit(" ", 1)[1]) >= 1


async def test_given_no_broker_then_alive_but_not_ready() -> None:
    kafka = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_port()}", request_timeout_s=1.0, publish_timeout_s=1.0
    )
    async with running_http(kafka) as (url, _), httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "kafka_unavailable"})
