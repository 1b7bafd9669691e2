"""A web-form submission refused by a rule, redriven from the command line once the office fixed
it, against a real Kafka (the mail's counterpart: ``test_redrive_mail.py``).

GIVEN an office's rules file with a mistake only the texts it matches reveal (a routing rule
naming two bodies as a list), WHEN a person posts a signed submission that matches it, THEN a
422 naming the problem, the submission kept (raw copy) and on record as ``not_a_complaint``;
WHEN the office fixes the file and runs ``intake-gateway dlq redrive``, THEN one
``complaint.received`` under the event id the submission would have had, from the submission
as it was posted; redriven again: refused, nothing new on the topic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from gateway.events import topics
from gateway.events.envelope import event_id
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.integration.dlq.test_redrive_mail import (
    redrive_refused_again,
    redriven_once,
    rules_file,
    the_only_open_record,
)
from tests.support.consumer import TopicReader
from tests.support.http import SECRETS, gateway_settings, running_gateway

pytestmark = pytest.mark.integration

FORM = "contact-form"
KEY = "effets-indesirables-1"
SUBMISSION = {
    "name": "Marie Tremblay",
    "email": "marie.tremblay@example.org",
    "body": "Bonjour, depuis le nouveau médicament j'ai des effets indésirables graves et "
    "personne ne me répond. Merci de me rappeler au 514 555 0123.",
}


def environment(kafka: KafkaSettings, data_dir: Path, rules: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_NORMALIZER_RULES": str(rules),
        "GATEWAY_WEBHOOK_SECRETS": json.dumps(SECRETS),
    }


async def post_refused_submission(kafka: KafkaSettings, data_dir: Path, rules: Path) -> None:
    settings = gateway_settings(kafka, data_dir).model_copy(deep=True)
    settings.normalizer.rules = rules
    body = json.dumps(SUBMISSION).encode()
    headers = {
        "content-type": "application/json",
        "Idempotency-Key": KEY,
        "X-Gateway-Signature": sign(body, SECRETS[FORM][0]),
    }
    async with running_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(f"/v1/webhooks/forms/{FORM}", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert "RoutingHint" in answer.json()["detail"]


async def test_a_submission_refused_by_a_rule_then_fixed_is_redriven_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = environment(kafka_settings, data_dir, rules_file(tmp_path, broken=True))
    await post_refused_submission(kafka_settings, data_dir, Path(env["GATEWAY_NORMALIZER_RULES"]))

    record_id, channel, reason_code, reason = await the_only_open_record(env)
    source_key = f"webform:{FORM}:{KEY}"
    assert record_id == event_id("intake.rejected", source_key)
    assert (channel, reason_code) == ("webform", "not_a_complaint")
    assert "RoutingHint" in reason

    rules_file(tmp_path, broken=False)  # the office fixes its rule
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    event = await redriven_once(env, record_id, complaints)
    assert event["type"] == "complaint.received"
    assert event["id"] == event_id("complaint.received", source_key)
    assert event["data"]["channel"] == "webform"
    assert event["data"]["routing"] == [
        {"body": "pharmacovigilance", "rule": "adverse_drug_effect"}
    ]
    assert event["data"]["complainant"]["email"] == SUBMISSION["email"]
    assert event["data"]["body"] == SUBMISSION["body"]

    await redrive_refused_again(env, record_id, complaints)
