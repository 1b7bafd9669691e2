"""A running gateway (uvicorn on loopback, real broker) for the web tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.http import gateway_settings, running_gateway


@pytest.fixture(scope="session")
async def web_settings(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> GatewaySettings:
    data_dir: Path = tmp_path_factory.mktemp("gateway-data")
    return gateway_settings(kafka_settings, data_dir, rate_per_client_per_minute=100_000)


@pytest.fixture(scope="session")
async def gateway_url(web_settings: GatewaySettings) -> AsyncIterator[str]:
    async with running_gateway(web_settings) as (url, _):
        yield url
