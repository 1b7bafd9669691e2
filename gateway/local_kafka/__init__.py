"""A local single-node Apache Kafka broker for ``intake-gateway dev`` and the tests.

The work is done by the ``kafka-local`` shell script beside this module (also linked as
``scripts/kafka-local``): it fetches the broker from Maven Central with ``mvn`` and runs it on the
machine's JDK. This module only calls it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from gateway.errors import ChannelUnavailable

SCRIPT = Path(__file__).with_name("kafka-local")


def local_port(bootstrap: str) -> int | None:
    """The port of a loopback bootstrap address (``localhost:9092``), None if not local."""
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    if host in {"localhost", "127.0.0.1", "[::1]"} and port.isdigit():
        return int(port)
    return None


async def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def run_script(command: str, port: int) -> None:
    """Run ``kafka-local <command>`` for the broker on ``port``; raises on failure."""
    env = {**os.environ, "KAFKA_LOCAL_PORT": str(port)}
    process = await asyncio.create_subprocess_exec("bash", str(SCRIPT), command, env=env)
    if await process.wait() != 0:
        msg = f"kafka-local {command} failed (exit {process.returncode})"
        raise ChannelUnavailable(msg)
