"""The gateway's HTTP service on a free loopback port, for the integration tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.components import Components
from gateway.publisher import KafkaPublisher
from gateway.runtime import HttpService
from gateway.settings import GatewaySettings, HttpSettings, KafkaSettings
from tests.support.kafka import free_port

SECRETS = {
    "contact-form": ["s3cret", "previous-secret"],
    "other-form": ["other-secret"],
    "builder-form": ["builder"],
}


def gateway_settings(kafka: KafkaSettings, data_dir: Path, **http: Any) -> GatewaySettings:
    return GatewaySettings.model_validate(
        {
            "kafka": kafka,
            "http": HttpSettings(port=free_port(), **http),
            "data_dir": data_dir,
            "webhook_secrets": SECRETS,
            "form_fields": {
                "builder-form": {
                    "answers.text": "body",
                    "contact.mail": "email",
                    "contact.full_name": "name",
                }
            },
        }
    )


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[tuple[str, KafkaPublisher]]:
    """Serve the app with uvicorn; yields its base URL and the publisher it uses."""
    url = f"http://127.0.0.1:{settings.http.port}"
    async with KafkaPublisher(settings.kafka) as publisher:
        components = Components.build(settings, publisher)
        task = asyncio.create_task(HttpService(components).run())
        try:
            await _wait_until_listening(url)
            yield url, publisher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            components.close()


@contextlib.asynccontextmanager
async def running_http(
    kafka: KafkaSettings, data_dir: Path | None = None
) -> AsyncIterator[tuple[str, KafkaPublisher]]:
    with tempfile.TemporaryDirectory() as scratch:
        settings = gateway_settings(kafka, data_dir or Path(scratch))
        async with running_gateway(settings) as served:
            yield served


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


@contextlib.contextmanager
def gateway_process(
    bootstrap: str, data_dir: Path, log: Path | None = None, **settings: str
) -> Iterator[tuple[str, int]]:
    """``intake-gateway run --only http`` in a subprocess (as a user runs it); yields its URL
    and process id.
    ``settings``: more GATEWAY_ variables, e.g. ``GATEWAY_WEBHOOK_SECRETS``; ``log``: a file
    that receives what the process writes (its JSON log lines)."""
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": bootstrap,
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATA_DIR": str(data_dir),
        **settings,
    }
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--only", "http"],
        env=env,
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the gateway did not start")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        if log is not None and not isinstance(output, int):
            output.close()
