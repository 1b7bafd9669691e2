"""schemathesis against the served /openapi.json: no 500 for any generated input, and every
answer conforms to the document (status codes, content types, response schemas).

The gateway runs as a user runs it (``intake-gateway run --only http`` in a subprocess, real
broker): schemathesis calls the server synchronously.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.support.http import SECRETS, gateway_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def served_gateway(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gateway_process(
        kafka_bootstrap,
        tmp_path_factory.mktemp("fuzz-data"),
        GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS),
        GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE="1000000",
    ) as (url, _):
        yield url


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
