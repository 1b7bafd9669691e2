"""Real servers for the integration tests, started once per session on loopback.

Kafka: a broker this session (each pytest-xdist worker) starts and stops itself with
``kafka-local``, or, in a run without workers, the broker ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` names.
Tests that stop a broker on purpose start a private one (``private_broker``). SMTP: aiosmtpd on a
free port, one per test. Twilio: Prism serving Twilio's own OpenAPI specs, one per session.
PostgreSQL: a throw-away cluster per session (each xdist worker has its own), a fresh empty
database per test (``postgres_url``). S3: a SeaweedFS server per session (each worker its own), a
fresh bucket per test (``s3_bucket``).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator

import pytest

from gateway.admin import create_topics
from gateway.settings import KafkaSettings
from tests.support.dovecot import Dovecot
from tests.support.kafka import LocalBroker
from tests.support.postgres import PostgresServer
from tests.support.prism import TwilioMock, twilio_mock
from tests.support.s3 import S3Bucket, S3Server
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """This session's broker: under pytest-xdist each worker starts its own (tests read what
    was written to a topic after a mark, and another worker's records would be among them)."""
    given = os.environ.get("GATEWAY_TEST_KAFKA_BOOTSTRAP")
    if given and "PYTEST_XDIST_WORKER" not in os.environ:
        yield given
        return
    broker = LocalBroker.create()
    try:
        yield broker.bootstrap
    finally:
        broker.destroy()


@pytest.fixture(scope="session")
async def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    settings = KafkaSettings(bootstrap=kafka_bootstrap, publish_timeout_s=20.0)
    await create_topics(settings)
    return settings


@pytest.fixture
def private_broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, which the test may stop and start."""
    broker = LocalBroker.create()
    try:
        yield broker
    finally:
        broker.destroy()


@pytest.fixture(scope="session")
def twilio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwilioMock]:
    """Prism serving Twilio's OpenAPI specs (Verify and the 2010 API) on loopback."""
    with twilio_mock(tmp_path_factory.mktemp("prism")) as mock:
        yield mock


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server of this test's own (aiosmtpd), keeping what it receives."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """This session's PostgreSQL cluster (under pytest-xdist, one per worker, on its own port).
    Tests may ``stop``/``restart`` it; ``postgres_url`` starts it again if a test left it down."""
    server = PostgresServer.create()
    try:
        yield server
    finally:
        server.destroy()


_database_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL (password over TCP) of a new empty database of this test's own, dropped after."""
    postgres_server.start()
    test_name = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower())
    name = f"t{next(_database_numbers)}_{test_name}"[:63]
    url = postgres_server.create_database(name)
    yield url
    if postgres_server.pid is not None:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """This session's SeaweedFS S3 server (under pytest-xdist, one per worker, on its own
    ports). Tests may ``stop``/``start`` it; ``s3_bucket`` starts it again if a test left it
    down."""
    server = S3Server.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[S3Bucket]:
    """A new empty bucket of this test's own (endpoint, keys, name), deleted with its objects
    after."""
    if not s3_server.running:
        s3_server.start()
    bucket = s3_server.create_bucket()
    yield bucket
    if s3_server.running:
        s3_server.delete_bucket(bucket.bucket)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A throw-away Dovecot IMAP server (``tests.support.dovecot``), one per test."""
    server = Dovecot.create()
    yield server
    server.destroy()
