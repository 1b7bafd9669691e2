"""A real Apache Kafka broker for the tests, run by the project's own ``kafka-local`` script.

Each broker gets free loopback ports and its own state folder (``broker-<port>`` in the script's
cache, beside the jars shared with ``intake-gateway dev``), and is stopped by its own process id
(the script keeps it); ``destroy`` wipes its data.

``SecuredBroker`` adds SASL_SSL, SASL_PLAINTEXT and SSL listeners to one (``kafka-local``'s
``KAFKA_LOCAL_EXTRA_*`` variables): a throw-away CA signs its certificate (a PEM keystore), PLAIN
users come from the listeners' JAAS configuration, SCRAM users are stored when its storage is
formatted.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.local_kafka import SCRIPT
from gateway.settings import KafkaSettings
from tests.support.tls import make_tls_files

EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000
_HANDED_OUT: set[int] = set()  # by this process: never handed out twice


def free_port() -> int:
    """A loopback port free now, never handed out before by this process, chosen at random
    below the kernel's range of ephemeral ports and, under pytest-xdist, in this worker's own
    share of them. A port of the ephemeral range (what binding port 0 gives) can be handed to
    another process's outgoing connection before the server meant to listen on it binds it
    ("Address already in use": the workers open many connections to their brokers); below
    the range no port is handed out so, and the workers' shares never meet. Port 0's way where
    the range is unknown."""
    low, high = port_share(_ephemeral_low(), os.environ)
    for _ in range(200 if high - low > 100 else 0):
        port = low + secrets.randbelow(high - low - 1)  # its next one in the share too (pairs)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_share(ephemeral_low: int, environment: Mapping[str, str]) -> tuple[int, int]:
    """[low, high) of the ports this process chooses from: below ``ephemeral_low``, this xdist
    worker's share of them."""
    high = ephemeral_low
    worker = environment.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    workers = environment.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.isdigit() and workers.isdigit() and int(worker) < int(workers)):
        return LOWEST_PORT, max(high, LOWEST_PORT)
    size = max(high - LOWEST_PORT, 0) // int(workers)
    start = LOWEST_PORT + int(worker) * size
    return start, start + size


@functools.cache  # the kernel's setting, read once a process rather than at every port
def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], name: str, timeout_s: float = 60
) -> None:
    """Until ``process`` (called ``name``) accepts connections on ``port``; RuntimeError if it
    exits first or does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on {port}")


def free_port_pair() -> int:
    """A port p such that p and p + 1 (the controller) are both free."""
    for _ in range(50):
        port = free_port()
        if port + 1 in _HANDED_OUT or not _bindable(port + 1):
            continue
        _HANDED_OUT.add(port + 1)
        return port
    raise RuntimeError("no free pair of loopback ports")


@dataclass
class LocalBroker:
    """One broker started by ``kafka-local`` on ``port``."""

    port: int
    environment: dict[str, str] = field(default_factory=dict)  # more KAFKA_LOCAL_* variables

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        """``kafka-local <command>``; what it says goes to this process's standard error (and
        so into a failing test's report), and with a ``CalledProcessError`` when it fails."""
        env = {
            **os.environ,
            "KAFKA_LOCAL_PORT": str(self.port),
            "KAFKA_LOCAL_HEAP": "384m",
            **self.environment,
        }
        arguments = ["bash", str(SCRIPT), command]
        try:
            done = subprocess.run(
                arguments, env=env, check=True, timeout=300, stderr=subprocess.PIPE, text=True
            )
        except subprocess.CalledProcessError as exc:
            sys.stderr.write(exc.stderr or "")
            raise
        sys.stderr.write(done.stderr)

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def destroy(self) -> None:
        self._run("reset")

    @classmethod
    def create(cls) -> LocalBroker:
        broker, _ = started_on_free_ports(lambda: (cls(port=free_port_pair()), None))
        return broker


PORT_ATTEMPTS = 3
Extra = TypeVar("Extra")


def started_on_free_ports(
    make: Callable[[], tuple[LocalBroker, Extra]],
) -> tuple[LocalBroker, Extra]:
    """A broker ``make`` gives (on ports it chose free), started; made again on other ports
    when one of them was taken between the choosing and the broker binding it: another
    process's connection may be given a port ``free_port`` saw free (with parallel test workers
    this happened about once in a few full runs). Any other failure is raised at once."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        broker, extra = make()
        try:
            broker.start()
        except subprocess.CalledProcessError as exc:
            broker.destroy()  # the state folder of the attempt
            if attempt == PORT_ATTEMPTS or "Address already in use" not in (exc.stderr or ""):
                raise
            continue
        return broker, extra
    raise AssertionError("unreachable")


SecuredProtocol = Literal["SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SECURED_PROTOCOLS: tuple[SecuredProtocol, ...] = ("SASL_SSL", "SASL_PLAINTEXT", "SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str


SCRAM_USER = BrokerUser("gateway", "scram-secret-of-the-gateway")  # SCRAM-SHA-256 and -512
PLAIN_USER = BrokerUser("office", "plain-secret-of-the-office")

_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


@dataclass
class SecuredBroker:
    """A local broker with a listener for each secured protocol, its certificate signed by
    ``ca`` (for 127.0.0.1 and localhost)."""

    broker: LocalBroker
    listeners: dict[SecuredProtocol, int]
    ca: Path

    def bootstrap(self, protocol: SecuredProtocol) -> str:
        return f"127.0.0.1:{self.listeners[protocol]}"

    def settings(self, protocol: SecuredProtocol, **fields: Any) -> KafkaSettings:
        """Client settings for ``protocol``'s listener, trusting the CA unless told otherwise."""
        defaults: dict[str, Any] = {"bootstrap": self.bootstrap(protocol), "publish_timeout_s": 20}
        if protocol != "SASL_PLAINTEXT":
            defaults["ca_file"] = self.ca
        return KafkaSettings(security_protocol=protocol, **(defaults | fields))

    def destroy(self) -> None:
        self.broker.destroy()

    @classmethod
    def create(cls, directory: Path) -> SecuredBroker:
        tls = make_tls_files(directory, ca_name="Test Kafka CA")
        keystore = directory / "broker-keystore.pem"  # Kafka's PEM keystore: key, then chain
        keystore.write_bytes(tls.key.read_bytes() + tls.certificate.read_bytes())
        config = directory / "secured.properties"
        config.write_text(_secured_config(keystore), encoding="utf-8")
        scram = [
            f"{mechanism}=[name={SCRAM_USER.name},password={SCRAM_USER.password}]"
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        ]

        def on_free_ports() -> tuple[LocalBroker, dict[SecuredProtocol, int]]:
            listeners = {protocol: free_port() for protocol in SECURED_PROTOCOLS}
            environment = {
                "KAFKA_LOCAL_EXTRA_LISTENERS": ",".join(
                    f"{protocol}://127.0.0.1:{port}" for protocol, port in listeners.items()
                ),
                "KAFKA_LOCAL_EXTRA_CONFIG": str(config),
                "KAFKA_LOCAL_SCRAM_USERS": "\n".join(scram),
            }
            return LocalBroker(port=free_port_pair(), environment=environment), listeners

        broker, listeners = started_on_free_ports(on_free_ports)
        return cls(broker, listeners, tls.ca)


def _secured_config(keystore: Path) -> str:
    lines = [
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        f"sasl.enabled.mechanisms={','.join(SASL_MECHANISMS)}",
    ]
    plain = f'{_PLAIN_MODULE} required user_{PLAIN_USER.name}="{PLAIN_USER.password}";'
    for listener in ("sasl_ssl", "sasl_plaintext"):
        lines.append(f"listener.name.{listener}.plain.sasl.jaas.config={plain}")
        for mechanism in ("scram-sha-256", "scram-sha-512"):
            jaas = f"{_SCRAM_MODULE} required;"
            lines.append(f"listener.name.{listener}.{mechanism}.sasl.jaas.config={jaas}")
    return "\n".join(lines) + "\n"
