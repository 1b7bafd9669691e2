"""A quarantined mail redriven from the command line, against a real Dovecot and Kafka.

GIVEN an office's rules file with a mistake only the mails it matches reveal (a routing rule
naming two bodies as a list, where one is expected: the normalizer cannot make the complaint,
and the IMAP channel quarantines the mail with a ``not_a_complaint`` record), WHEN the office
fixes the file and runs ``intake-gateway dlq redrive``, THEN one ``complaint.received`` under
the event id the mail would have had, the mail in ``Processed``; redriven again: nothing new.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.channels.imap import ImapChannel
from gateway.components import Components
from gateway.events import topics
from gateway.events.envelope import event_id
from gateway.normalizers.rules import DEFAULT_RULES
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.dovecot import PASSWORD, USER, Dovecot, append, count, simple_mail

pytestmark = pytest.mark.integration

MESSAGE_ID = "<effets-42@example.org>"
MAIL = simple_mail(
    MESSAGE_ID,
    "Médicament et effets indésirables",
    "Bonjour, depuis le nouveau médicament j'ai des effets indésirables graves et personne ne "
    "me répond. Marie Tremblay, 514 555 0123",
)
GOOD_BODY = 'body = "pharmacovigilance"'


def rules_file(folder: Path, broken: bool) -> Path:
    """The built-in rules, or the same with an office's mistake in one routing rule."""
    rules = DEFAULT_RULES.read_text(encoding="utf-8")
    assert GOOD_BODY in rules
    if broken:
        rules = rules.replace(GOOD_BODY, 'body = ["pharmacovigilance", "professional-order"]')
    path = folder / "rules.toml"
    path.write_text(rules, encoding="utf-8")
    return path


def environment(
    dovecot: Dovecot, kafka: KafkaSettings, data_dir: Path, rules: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_IMAP_HOST": "127.0.0.1",
        "GATEWAY_IMAP_PORT": str(dovecot.port),
        "GATEWAY_IMAP_USER": USER,
        "GATEWAY_IMAP_PASSWORD": PASSWORD,
        "GATEWAY_IMAP_TLS": "false",
        "GATEWAY_NORMALIZER_RULES": str(rules),
    }


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "dlq",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def the_only_open_record(env: dict[str, str]) -> tuple[str, str, str, str]:
    """(id, channel, reason code, reason) of the one record ``dlq list`` shows."""
    code, out, _ = await cli(env, "list")
    assert code == 0
    [line] = out.splitlines()
    record_id, _, channel, reason_code, reason = line.split("\t")
    return record_id, channel, reason_code, reason


async def redriven_once(
    env: dict[str, str], record_id: str, complaints: TopicReader
) -> dict[str, Any]:
    """``dlq redrive`` (by the id's first characters): one event published, returned; no
    record left open."""
    await complaints.mark()
    code, out, err = await cli(env, "redrive", record_id[:8])
    assert code == 0, err
    assert out.startswith(f"redriven\t{record_id}\tpublished 1")
    [record] = await complaints.read_to_end()
    code, listed, _ = await cli(env, "list")
    assert (code, listed) == (0, "")
    event: dict[str, Any] = json.loads(record.value)
    return event


async def redrive_refused_again(
    env: dict[str, str], record_id: str, complaints: TopicReader
) -> None:
    """A second ``dlq redrive`` of the record: refused, nothing published."""
    await complaints.mark()
    code, _, err = await cli(env, "redrive", record_id)
    assert code == 1
    assert "already redriven by cli:" in err
    assert await complaints.read_to_end() == []


async def quarantine_with_broken_rules(env: dict[str, str], kafka: KafkaSettings) -> None:
    """The email service, as ``run --only email`` builds it, drains the mailbox once."""
    settings = GatewaySettings.model_validate(
        {
            "kafka": kafka,
            "data_dir": env["GATEWAY_DATA_DIR"],
            "imap": {
                "host": "127.0.0.1",
                "port": env["GATEWAY_IMAP_PORT"],
                "user": USER,
                "password": PASSWORD,
                "tls": False,
            },
            "normalizer": {"rules": env["GATEWAY_NORMALIZER_RULES"]},
        }
    )
    async with KafkaPublisher(kafka) as publisher:
        components = await Components.open(settings, publisher)
        try:
            [account] = settings.imap.accounts()
            channel = ImapChannel(account, components.intake, components.claims, components.state)
            assert await channel.drain() == 1
        finally:
            await components.close()


async def test_a_mail_quarantined_by_a_rule_then_fixed_is_redriven_once(
    dovecot: Dovecot, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    env = environment(dovecot, kafka_settings, tmp_path / "data", rules_file(tmp_path, True))
    await append(dovecot, MAIL)
    await quarantine_with_broken_rules(env, kafka_settings)
    assert (await count(dovecot, "Quarantine"), await count(dovecot, "Processed")) == (1, 0)

    record_id, channel, reason_code, reason = await the_only_open_record(env)
    assert record_id == event_id("intake.rejected", f"email:{MESSAGE_ID}")
    assert (channel, reason_code) == ("email", "not_a_complaint")
    assert "RoutingHint" in reason
    code, out, _ = await cli(env, "show", record_id[:8])
    assert code == 0
    assert f"Message-ID: {MESSAGE_ID}" in out  # the raw copy's headers
    assert "Subject: Médicament et effets indésirables" in out

    rules_file(tmp_path, broken=False)  # the office fixes its rule
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    event = await redriven_once(env, record_id, complaints)
    assert event["type"] == "complaint.received"
    assert event["id"] == event_id("complaint.received", f"email:{MESSAGE_ID}")
    assert event["data"]["routing"] == [
        {"body": "pharmacovigilance", "rule": "adverse_drug_effect"}
    ]
    assert event["data"]["source_message"]["id"] == MESSAGE_ID
    assert (await count(dovecot, "Quarantine"), await count(dovecot, "Processed")) == (0, 1)

    await redrive_refused_again(env, record_id, complaints)
    code, out, _ = await cli(env, "show", record_id)
    assert "redriven by cli:" in out
    assert event["id"] in out
