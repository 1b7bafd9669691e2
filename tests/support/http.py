"""The gateway's HTTP service on a free loopback port, for the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from gateway.publisher import KafkaPublisher
from gateway.runtime import HttpService
from gateway.settings import GatewaySettings, HttpSettings, KafkaSettings
from tests.support.kafka import free_port


@contextlib.asynccontextmanager
async def running_http(kafka: KafkaSettings) -> AsyncIterator[tuple[str, KafkaPublisher]]:
    """Serve the app with uvicorn; yields its base URL and the publisher it uses."""
    port = free_port()
    settings = GatewaySettings(kafka=kafka, http=HttpSettings(port=port))
    url = f"http://127.0.0.1:{port}"
    async with KafkaPublisher(settings.kafka) as publisher:
        task = asyncio.create_task(HttpService(settings, publisher).run())
        try:
            await _wait_until_listening(url)
            yield url, publisher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _wait_until_listening(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(200):
            try:
                await client.get("/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.05)
            else:
                return
    raise AssertionError(f"{url} did not start listening")
