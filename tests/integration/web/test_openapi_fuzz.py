"""schemathesis against the served /openapi.json: no 500 for any generated input, and every
answer conforms to the document (status codes, content types, response schemas).

The gateway runs as a user runs it (``intake-gateway run --only http`` in a subprocess, real
broker): schemathesis calls the server synchronously.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.support.http import SECRETS
from tests.support.kafka import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def served_gateway(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data_dir: Path = tmp_path_factory.mktemp("fuzz-data")
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_WEBHOOK_SECRETS": json.dumps(SECRETS),
        "GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE": "1000000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--only", "http"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_no_generated_input_makes_the_server_fail(served_gateway: str) -> None:
    """Each operation of the document, 40 generated requests each (schemathesis + hypothesis)."""
    schema = schemathesis.openapi.from_url(f"{served_gateway}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.validate_response(case.call(timeout=30), checks=CHECKS)

        call()
