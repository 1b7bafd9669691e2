"""How every Kafka client of the gateway encrypts and authenticates (``GATEWAY_KAFKA_SECURITY_*``).

The producer, the notifier's consumer, ``tail``, topic administration and the local broker's
probes all build their aiokafka client with ``client_security(settings)``, so one setting
secures every connection. TLS checks the broker's certificate and host name against
``GATEWAY_KAFKA_CA_FILE`` (else the system's CAs); SASL sends ``GATEWAY_KAFKA_SASL_USERNAME`` and
``GATEWAY_KAFKA_SASL_PASSWORD`` with PLAIN (RFC 4616) or SCRAM (RFC 5802, RFC 7677).
``start_or_stop`` starts such a client, or stops it when its start does not end well.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from ssl import SSLContext
from typing import Protocol, TypedDict

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from gateway.errors import ConfigurationError, KafkaUnavailable
from gateway.events import topics
from gateway.settings import KafkaSettings


class ClientSecurity(TypedDict, total=False):
    """The security keyword arguments aiokafka's producer, consumer and admin client take."""

    security_protocol: str
    ssl_context: SSLContext
    sasl_mechanism: str
    sasl_plain_username: str
    sasl_plain_password: str


def client_security(settings: KafkaSettings) -> ClientSecurity:
    """The keyword arguments that give an aiokafka client the configured protocol, TLS trust and
    SASL credentials (KafkaSettings' validation ensures what each protocol needs is there)."""
    security = ClientSecurity(security_protocol=settings.security_protocol)
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        security["ssl_context"] = create_ssl_context(cafile=settings.ca_file)
    if settings.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        if settings.sasl_mechanism is None or settings.sasl_password is None:
            msg = (
                f"GATEWAY_KAFKA_SECURITY_PROTOCOL={settings.security_protocol} needs "
                "GATEWAY_KAFKA_SASL_MECHANISM and GATEWAY_KAFKA_SASL_PASSWORD"
            )
            raise ConfigurationError(msg)
        security["sasl_mechanism"] = settings.sasl_mechanism
        security["sasl_plain_username"] = settings.sasl_username or ""
        security["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return security


def group_consumer(settings: KafkaSettings, group_id: str, reader: str) -> AIOKafkaConsumer:
    """A consumer group's reader of ``complaints.v1`` and ``notifications.v1`` (the notifier's,
    the tracker's): offsets committed by the service once its work is kept, from the first
    offset for a new group, committed transactions only; ``reader`` names its client id."""
    return AIOKafkaConsumer(
        topics.COMPLAINTS,
        topics.NOTIFICATIONS,
        bootstrap_servers=settings.bootstrap,
        group_id=group_id,
        client_id=f"{settings.client_id}-{reader}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=30 * 60 * 1000,
        **client_security(settings),
    )


class KafkaClient(Protocol):
    """aiokafka's producer and consumer, as far as starting and stopping them goes."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@contextlib.contextmanager
def reaching(bootstrap: str) -> Iterator[None]:
    """Kafka's and the network's errors within, as ``KafkaUnavailable`` naming the brokers."""
    try:
        yield
    except (KafkaError, OSError) as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}: {exc}") from exc


async def start_or_stop(client: KafkaClient, bootstrap: str) -> None:
    """``client`` started, or stopped when its start failed or was cancelled (a Ctrl-C, a time
    bound): aiokafka reports a client never stopped at level error, its connections open."""
    try:
        with reaching(bootstrap):
            await client.start()
    except BaseException:
        await client.stop()
        raise
