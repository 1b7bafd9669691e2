"""A local single-node Apache Kafka broker for ``intake-gateway dev`` and the tests.

The work is done by the ``kafka-local`` shell script beside this module (also linked as
``scripts/kafka-local``): it fetches the broker from Maven Central with ``mvn`` and runs it on the
machine's JDK. This module only calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from gateway.errors import ChannelUnavailable
from gateway.kafka_security import client_security
from gateway.settings import KafkaSettings

SCRIPT = Path(__file__).with_name("kafka-local")
_LISTENER = re.compile(r"^advertised\.listeners=PLAINTEXT://127\.0\.0\.1:(\d+)$", re.MULTILINE)
_CLUSTER_ID = re.compile(r"^cluster\.id=(\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class DevBroker:
    """The broker ``intake-gateway dev`` starts for one data dir. Its config, data, log and
    process id live in ``<data dir>/kafka`` (``kafka-local``'s instance folder), its cluster id in
    the KRaft metadata there: what tells it from any other program on the same port."""

    folder: Path

    @classmethod
    def of(cls, data_dir: Path) -> DevBroker:
        return cls(data_dir / "kafka")

    def port(self) -> int | None:
        """The port it was configured with, None before its first start."""
        found = _LISTENER.search(_read(self.folder / "server.properties"))
        return int(found.group(1)) if found else None

    def cluster_id(self) -> str | None:
        found = _CLUSTER_ID.search(_read(self.folder / "data" / "meta.properties"))
        return found.group(1) if found else None

    def running(self) -> bool:
        """Its process (by the id kept in the folder) is alive."""
        pid = _read(self.folder / "broker.pid").strip()
        if not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, another user's
            return True
        return True

    def bootstrap(self) -> str | None:
        """Its address while it runs, else None."""
        port = self.port()
        return f"127.0.0.1:{port}" if port is not None and self.running() else None

    async def answers_at(self, port: int) -> bool:
        """The broker answering on ``port`` is this one (same process alive, same cluster id)."""
        if not self.running() or self.port() != port:
            return False
        expected = self.cluster_id()
        return expected is not None and await cluster_id(f"127.0.0.1:{port}") == expected

    async def start(self, port: int) -> None:
        await run_script("start", port, self.folder)

    async def stop(self, port: int) -> None:
        await run_script("stop", port, self.folder)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


async def cluster_id(
    bootstrap: str, timeout_s: float = 5.0, security: KafkaSettings | None = None
) -> str | None:
    """The cluster id of the Kafka broker at ``bootstrap``; None if what answers is not Kafka.
    ``security``: how to connect (default PLAINTEXT, as to the brokers ``kafka-local`` starts)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **client_security(security or KafkaSettings(bootstrap=bootstrap)),
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            described = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await admin.close()
    found = described.get("cluster_id")
    return str(found) if found else None


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


def port_in_use(host: str, port: int) -> bool:
    """Something listens on ``host:port`` (a bind would fail)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False


async def run_script(command: str, port: int, instance: Path | None = None) -> None:
    """Run ``kafka-local <command>`` for the broker on ``port`` (its state in ``instance``, else
    the script's cache folder); raises on failure."""
    env = {**os.environ, "KAFKA_LOCAL_PORT": str(port)}
    if instance is not None:
        env["KAFKA_LOCAL_INSTANCE"] = str(instance)
    process = await asyncio.create_subprocess_exec("bash", str(SCRIPT), command, env=env)
    if await process.wait() != 0:
        msg = f"kafka-local {command} failed (exit {process.returncode})"
        raise ChannelUnavailable(msg)
