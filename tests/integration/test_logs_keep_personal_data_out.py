"""The logs of a gateway run as a user runs it hold no personal data in clear: a complaint full
of an email address, a phone number and a health-insurance number goes through, and a bad one
is refused, then every line the process wrote is searched for those values."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.forms import signed_json
from tests.support.http import SECRETS, gateway_process

pytestmark = pytest.mark.integration

SECRET_VALUES = [
    "marie.secret@example.org",
    "marie.secret",
    "514 555 0177",
    "5145550177",
    "TREM 8503 1512",
    "TREM85031512",
    "1 84 12 75 123 456 78",
]


def test_personal_data_sent_in_never_appears_in_clear_in_the_logs(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    log = tmp_path / "gateway.log"
    complaint = {
        "name": "Marie Secret",
        "email": "marie.secret@example.org",
        "phone": "514 555 0177",
        "health_insurance_number": "TREM 8503 1512",
        "body": "Mon NAM est TREM 8503 1512, mon NIR 1 84 12 75 123 456 78, "
        "écrivez à marie.secret@example.org ou au 514 555 0177.",
    }
    with gateway_process(
        kafka_bootstrap, tmp_path / "data", log=log, GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS)
    ) as (url, _):
        accepted = httpx.post(f"{url}/v1/webhooks/forms/contact-form", **signed_json(complaint))
        refused = httpx.post(
            f"{url}/v1/webhooks/forms/contact-form",
            **signed_json({**complaint, "email": "marie.secret@@example.org"}),
        )
    assert accepted.status_code == 202
    assert refused.status_code == 422
    lines = log.read_text(errors="replace").splitlines()
    assert any("intake.published" in line for line in lines)  # the run did log
    leaks = [(value, line) for line in lines for value in SECRET_VALUES if value in line]
    assert leaks == []
