"""The logs of a gateway run as a user runs it hold no personal data in clear: a complaint full
of an email address, a phone number and a health-insurance number goes through, and a bad one
is refused, then every line the process wrote is searched for those values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.settings import KafkaSettings
from tests.support.forms import signed_json
from tests.support.http import SECRETS, gateway_process
from tests.support.pages import TOKEN

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
    kafka_settings: KafkaSettings, tmp_path: Path
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
    kafka_bootstrap = kafka_settings.bootstrap  # the topics made (a broker of this run alone)
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


def test_the_new_paths_keep_personal_data_out_of_the_logs_too(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN the same complaint filed by the webhook and by the page (a forged post of it
    refused), then the privacy commands run on it (key rotation, retention dry and real, hold
    and release, audit, erasure) THEN no line any of them wrote holds it in clear."""
    log, data_dir = tmp_path / "gateway.log", tmp_path / "data"
    kafka_bootstrap = kafka_settings.bootstrap
    page_fields = {
        "name": "Marie Secret",
        "email": "marie.secret@example.org",
        "phone": "514 555 0177",
        "body": "Mon NAM est TREM 8503 1512, écrivez à marie.secret@example.org.",
        "consent": "true",
        "submission_id": str(uuid.uuid4()),
    }
    with (
        gateway_process(
            kafka_bootstrap, data_dir, log=log, GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS)
        ) as (url, _),
        httpx.Client(base_url=url) as browser,
    ):
        forged = httpx.post(f"{url}/complaints/new", data=page_fields)
        page = browser.get("/complaints/new?lang=fr")
        token = TOKEN.search(page.text)
        assert token is not None
        filed = browser.post(
            "/complaints/new?lang=fr",
            data={"csrf_token": token.group(1), **page_fields},
            files=[("attachments", ("", b"", "application/octet-stream"))],  # none chosen
        )
        accepted = httpx.post(
            f"{url}/v1/webhooks/forms/contact-form",
            **signed_json({k: page_fields[k] for k in ("name", "email", "phone", "body")}),
        )
    assert forged.status_code == 403
    assert filed.status_code == 200
    assert accepted.status_code == 202
    reference = accepted.json()["reference"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environment |= {"GATEWAY_DATA_DIR": str(data_dir), "GATEWAY_KAFKA_BOOTSTRAP": kafka_bootstrap}
    written = log.read_text(errors="replace").splitlines()
    for command in (
        ["keys", "rotate"],
        ["retention", "run", "--dry-run"],
        ["retention", "hold", reference, "--note", "inquiry"],
        ["retention", "holds"],
        ["retention", "release", reference],
        ["audit", reference],
        ["erase", reference],
        ["retention", "run"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *command],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
        written += done.stdout.splitlines() + done.stderr.splitlines()
    assert any("privacy.erased" in line for line in written)  # the commands did log
    leaks = [(value, line) for line in written for value in SECRET_VALUES if value in line]
    assert leaks == []
