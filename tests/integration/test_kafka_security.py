"""The gateway against a broker that wants TLS and SASL: every client it builds (publisher,
``tail``, topic administration, the notifier's consumer, readiness, the cluster-id probe)
connects with GATEWAY_KAFKA_SECURITY_PROTOCOL and its companions, and a wrong password or an
unknown certificate fails at once, saying why, instead of hanging."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.admin import create_topics
from gateway.errors import KafkaUnavailable
from gateway.events import topics
from gateway.local_kafka import cluster_id
from gateway.notifier.service import notifier_consumer
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from tests.integration.test_publisher import complaint
from tests.support.kafka import PLAIN_USER, SCRAM_USER, BrokerUser, SecuredBroker, SecuredProtocol

pytestmark = pytest.mark.integration

EXIT_UNAVAILABLE = 3
FAILS_WITHIN_S = 10.0  # a refused login or certificate is no outage to wait out


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    broker = SecuredBroker.create(tmp_path_factory.mktemp("kafka-secured"))
    try:
        yield broker
    finally:
        broker.destroy()


def sasl(
    secured: SecuredBroker,
    protocol: SecuredProtocol,
    mechanism: str,
    user: BrokerUser,
    **fields: Any,
) -> KafkaSettings:
    return secured.settings(
        protocol,
        sasl_mechanism=mechanism,
        sasl_username=user.name,
        sasl_password=user.password,
        **fields,
    )


@pytest.fixture(scope="module")
async def scram_512(secured: SecuredBroker) -> KafkaSettings:
    """SASL_SSL with SCRAM-SHA-512; the topics are created through it."""
    settings = sasl(secured, "SASL_SSL", "SCRAM-SHA-512", SCRAM_USER)
    states = await create_topics(settings)
    assert [state.name for state in states if state.partitions] == list(topics.ALL)
    return settings


def environment(settings: KafkaSettings) -> dict[str, str]:
    """The GATEWAY_KAFKA_* variables an operator would set for ``settings``."""
    ours = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    ours["GATEWAY_KAFKA_BOOTSTRAP"] = settings.bootstrap
    ours["GATEWAY_KAFKA_SECURITY_PROTOCOL"] = settings.security_protocol
    if settings.sasl_mechanism is not None:
        ours["GATEWAY_KAFKA_SASL_MECHANISM"] = settings.sasl_mechanism
    if settings.sasl_username is not None:
        ours["GATEWAY_KAFKA_SASL_USERNAME"] = settings.sasl_username
    if settings.sasl_password is not None:
        ours["GATEWAY_KAFKA_SASL_PASSWORD"] = settings.sasl_password.get_secret_value()
    if settings.ca_file is not None:
        ours["GATEWAY_KAFKA_CA_FILE"] = str(settings.ca_file)
    return ours


async def tail_cli(settings: KafkaSettings, *args: str) -> tuple[int, str, str]:
    """``intake-gateway tail`` configured by its environment alone, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "tail",
        *args,
        env=environment(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("protocol", "mechanism", "user"),
    [
        ("SASL_SSL", "SCRAM-SHA-512", SCRAM_USER),
        ("SASL_SSL", "PLAIN", PLAIN_USER),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", SCRAM_USER),
        ("SSL", None, None),
    ],
)
async def test_given_a_secured_listener_when_the_publisher_publishes_then_tail_reads_it_back(
    secured: SecuredBroker,
    scram_512: KafkaSettings,
    protocol: SecuredProtocol,
    mechanism: str | None,
    user: BrokerUser | None,
) -> None:
    if mechanism is None or user is None:
        settings = secured.settings(protocol)
    else:
        settings = sasl(secured, protocol, mechanism, user)
    event = complaint(f"webform:secured-{protocol}-{mechanism}-{time.time_ns()}")
    async with KafkaPublisher(settings) as publisher:
        assert await publisher.is_ready()
        acknowledged = await publisher.publish(event)
    assert acknowledged.topic == topics.COMPLAINTS
    code, out, err = await tail_cli(settings, "--from-beginning", "--idle-timeout", "2")
    assert code == 0, err
    assert [line for line in out.splitlines() if event.id in line], out


async def test_given_scram_when_the_notifier_joins_its_group_then_it_reads_the_complaint(
    scram_512: KafkaSettings,
) -> None:
    event = complaint(f"webform:secured-notifier-{time.time_ns()}")
    async with KafkaPublisher(scram_512) as publisher:
        await publisher.publish(event)
    consumer = notifier_consumer(scram_512, group_id=f"secured-notifier-{time.time_ns()}")
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            seen: list[bytes] = []
            while not any(event.id.encode() in value for value in seen):
                batch = await consumer.getmany(timeout_ms=1000)
                seen += [record.value or b"" for records in batch.values() for record in records]
            await consumer.commit()  # the group coordinator answers over SASL_SSL too
    finally:
        await consumer.stop()


async def test_given_the_security_settings_then_the_cluster_id_probe_sees_the_same_broker(
    secured: SecuredBroker, scram_512: KafkaSettings
) -> None:
    over_sasl = await cluster_id(scram_512.bootstrap, security=scram_512)
    assert over_sasl is not None
    assert over_sasl == await cluster_id(secured.broker.bootstrap)  # its PLAINTEXT listener
    assert await cluster_id(scram_512.bootstrap) is None  # PLAINTEXT to a SASL_SSL listener


@pytest.mark.parametrize(
    ("mechanism", "user"), [("SCRAM-SHA-512", SCRAM_USER), ("PLAIN", PLAIN_USER)]
)
async def test_given_a_wrong_password_then_publishing_fails_at_once_with_kafka_unavailable(
    secured: SecuredBroker, scram_512: KafkaSettings, mechanism: str, user: BrokerUser
) -> None:
    wrong = BrokerUser(user.name, "not-the-password")
    settings = sasl(secured, "SASL_SSL", mechanism, wrong)
    started = time.monotonic()
    async with KafkaPublisher(settings) as publisher:
        assert not await publisher.is_ready()
        with pytest.raises(KafkaUnavailable, match=settings.bootstrap):
            await publisher.publish(complaint(f"webform:wrong-password-{time.time_ns()}"))
    assert time.monotonic() - started < FAILS_WITHIN_S


async def test_given_a_wrong_password_then_tail_stops_and_says_authentication_failed(
    secured: SecuredBroker, scram_512: KafkaSettings
) -> None:
    wrong = BrokerUser(SCRAM_USER.name, "not-the-password-7q")
    settings = sasl(secured, "SASL_SSL", "SCRAM-SHA-512", wrong)
    started = time.monotonic()
    code, _, err = await tail_cli(settings, "--idle-timeout", "1")
    assert time.monotonic() - started < FAILS_WITHIN_S + 5  # + the interpreter's start
    assert code == EXIT_UNAVAILABLE
    assert "SaslAuthenticationFailed" in err
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in err
    assert f"intake-gateway: cannot reach Kafka at {settings.bootstrap}" in err
    assert wrong.password not in err


async def test_given_tls_without_the_ca_file_then_the_unknown_certificate_stops_the_client(
    secured: SecuredBroker, scram_512: KafkaSettings
) -> None:
    """The broker's certificate is signed by a CA the system does not know."""
    settings = sasl(secured, "SASL_SSL", "SCRAM-SHA-512", SCRAM_USER, ca_file=None)
    started = time.monotonic()
    async with KafkaPublisher(settings) as publisher:
        with pytest.raises(KafkaUnavailable, match=settings.bootstrap):
            await publisher.publish(complaint(f"webform:unknown-ca-{time.time_ns()}"))
    assert time.monotonic() - started < FAILS_WITHIN_S
    code, _, err = await tail_cli(settings, "--idle-timeout", "1")
    assert code == EXIT_UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in err
