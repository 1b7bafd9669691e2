"""A real Apache Kafka broker for the tests, run by the project's own ``kafka-local`` script.

Each broker gets free loopback ports and its own state folder (``broker-<port>`` in the script's
cache, beside the jars shared with ``intake-gateway dev``), and is stopped by its own process id
(the script keeps it); ``destroy`` wipes its data.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass

from gateway.local_kafka import SCRIPT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_pair() -> int:
    """A port p such that p and p + 1 (the controller) are both free."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of loopback ports")


@dataclass
class LocalBroker:
    """One broker started by ``kafka-local`` on ``port``."""

    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        env = {
            **os.environ,
            "KAFKA_LOCAL_PORT": str(self.port),
            "KAFKA_LOCAL_HEAP": "384m",
        }
        subprocess.run(["bash", str(SCRIPT), command], env=env, check=True, timeout=300)

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def destroy(self) -> None:
        self._run("reset")

    @classmethod
    def create(cls) -> LocalBroker:
        broker = cls(port=free_port_pair())
        broker.start()
        return broker
