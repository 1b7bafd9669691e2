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
        components = await Components.open(settings, publisher)
        task = asyncio.create_task(HttpService(components).run())
        try:
            await _wait_until_listening(url)
            yield url, publisher
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await components.close()


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


class GatewayProcess:
    """``intake-gateway run --only <services>`` in a subprocess, as a user runs it. It may be
    killed and started again: the same port, data folder and log (appended to) each time.

    ``settings``: more GATEWAY_ variables, e.g. ``GATEWAY_WEBHOOK_SECRETS``; ``log``: a file that
    receives what the process writes (its JSON log lines)."""

    def __init__(
        self,
        bootstrap: str,
        data_dir: Path,
        *,
        services: tuple[str, ...] = ("http",),
        log: Path | None = None,
        **settings: str,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.services = services
        self.log = log
        self.env = {
            **os.environ,
            "GATEWAY_KAFKA_BOOTSTRAP": bootstrap,
            "GATEWAY_HTTP_PORT": str(self.port),
            "GATEWAY_DATA_DIR": str(data_dir),
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process; returns once its HTTP server answers (blocking: call it through
        ``asyncio.to_thread`` from a test's event loop)."""
        output = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--only", *self.services],
                env=self.env,
                stdout=output,
                stderr=output,
            )
        finally:
            if not isinstance(output, int):
                output.close()  # the child has its own copy
        for _ in range(400):
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
            else:
                return
        raise RuntimeError("the gateway did not start")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a power cut or the OOM killer would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@contextlib.contextmanager
def gateway_process(
    bootstrap: str, data_dir: Path, log: Path | None = None, **settings: str
) -> Iterator[tuple[str, int]]:
    """``intake-gateway run --only http`` in a subprocess; yields its URL and process id."""
    gateway = GatewayProcess(bootstrap, data_dir, log=log, **settings)
    gateway.start()
    try:
        yield gateway.url, gateway.pid
    finally:
        gateway.stop()
