"""A gateway service running in the test process, and test settings with sections merged."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from gateway.components import Components
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings


class Service(Protocol):
    async def run(self) -> None: ...


@contextlib.asynccontextmanager
async def running_service(
    settings: GatewaySettings, build: Callable[[Components], Service]
) -> AsyncIterator[Components]:
    """``build(components).run()`` in this process; its components yielded (the stores to
    look at), everything stopped after."""
    async with KafkaPublisher(settings.kafka) as publisher:
        components = await Components.open(settings, publisher)
        task = asyncio.create_task(build(components).run())
        try:
            yield components
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await components.close()


def with_overrides(values: dict[str, Any], overrides: Mapping[str, Any]) -> GatewaySettings:
    """Settings from ``values`` and ``overrides``, a section given in both merged (the test's
    port and group stay)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return GatewaySettings.model_validate(values)
