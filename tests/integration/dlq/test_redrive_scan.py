"""A corrupt scan quarantined, replaced by a good one in the quarantine folder, and redriven from
the command line: real Tesseract, real broker, the postal channel's own code.

GIVEN a scan the postal channel quarantined as corrupt, WHEN it is redriven as it is, THEN it
is still rejected and its record stays open (the attempt counted); WHEN the mail room puts a
good scan of the letter under the same name in ``quarantine/`` and it is redriven, THEN one
``complaint.received`` under the event id of the first file, pointing to the good copy, and the
file in ``processed/<date>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from gateway.channels.postal import PROCESSED, QUARANTINE, PostalChannel
from gateway.components import Components
from gateway.events import topics
from gateway.events.envelope import event_id
from gateway.normalizers.rules import DEFAULT_RULES
from gateway.ocr.tesseract import TesseractEngine
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from tests.integration.dlq.test_redrive_mail import cli
from tests.support.consumer import TopicReader
from tests.support.letters import blank_page, save_pdf, save_tiff, scanned_letters

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CORRUPT = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\n(cut off by the scanner"


async def quarantine(settings: GatewaySettings, kafka: KafkaSettings, scan: Path) -> str:
    """The postal channel, as ``run --only postal`` builds it, takes one file."""
    async with KafkaPublisher(kafka) as publisher:
        components = await Components.open(settings, publisher)
        engine = TesseractEngine(workers=1)
        try:
            channel = PostalChannel(
                settings.postal, components.intake, components.claims, components.state, engine
            )
            return await channel.process(scan)
        finally:
            engine.close()
            await components.close()


async def test_a_corrupt_scan_replaced_by_a_good_one_is_redriven(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    data_dir, inbox = tmp_path / "data", tmp_path / "inbox"
    inbox.mkdir()
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_POSTAL_INBOX": str(inbox),
        "GATEWAY_POSTAL_WORKERS": "1",
    }
    settings = GatewaySettings.model_validate(
        {"kafka": kafka_settings, "data_dir": data_dir, "postal": {"inbox": inbox, "workers": 1}}
    )
    scan = inbox / "scan-0007.pdf"
    scan.write_bytes(CORRUPT)
    assert await quarantine(settings, kafka_settings, scan) == QUARANTINE
    quarantined = inbox / QUARANTINE / "scan-0007.pdf"
    assert quarantined.read_bytes() == CORRUPT
    first_key = f"postal:{hashlib.sha256(CORRUPT).hexdigest()}"
    record_id = event_id("intake.rejected", first_key)

    code, out, _ = await cli(env, "list", "--reason", "corrupt_pdf")
    assert code == 0
    assert out.startswith(f"{record_id}\t")
    code, out, _ = await cli(env, "show", record_id)
    assert "file        scan-0007.pdf" in out
    assert "(no page can be read: corrupt_pdf" in out

    code, out, _ = await cli(env, "redrive", record_id)  # as it is: still corrupt
    assert code == 1
    assert out.startswith(f"still rejected\t{record_id}\tcorrupt_pdf")
    assert quarantined.exists()

    letter = scanned_letters()[0]
    save_pdf([letter.page], tmp_path / "good.pdf").replace(quarantined)  # the mail room's fix
    good = hashlib.sha256(quarantined.read_bytes()).hexdigest()
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    code, out, err = await cli(env, "redrive", record_id[:8])
    assert code == 0, err
    assert "scan moved from quarantine/ to processed/" in out
    [record] = await complaints.read(1, timeout_s=60)
    event = json.loads(record.value)
    assert event["id"] == event_id("complaint.received", first_key)
    assert [(i["value"], i["valid"]) for i in event["data"]["identifiers"]] == [
        ("TREM85031512", True)
    ]
    scan_attachment = event["data"]["attachments"][0]
    assert (scan_attachment["filename"], scan_attachment["sha256"]) == ("scan-0007.pdf", good)
    assert event["data"]["source_message"]["uri"].endswith(good)
    assert not quarantined.exists()
    [moved] = (inbox / PROCESSED).rglob("scan-0007.pdf")
    assert hashlib.sha256(moved.read_bytes()).hexdigest() == good

    code, out, _ = await cli(env, "list", "--all")
    assert out.split("\t")[-1].strip() == "redriven"
    code, out, _ = await cli(env, "show", record_id)
    assert "2 redrive attempt(s)" in out
    assert "still_rejected" in out


async def test_one_letter_of_a_batch_refused_by_a_rule_is_redriven_alone(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """GIVEN a batch of two letters whose second a broken routing rule (two bodies as a list)
    keeps from becoming a complaint, the first published and the scan done, WHEN the rule is
    fixed and the second letter's record redriven, THEN that letter alone is published, under
    the id it would have had (the scan's SHA-256 and its rank)."""
    data_dir, inbox, rules = tmp_path / "data", tmp_path / "inbox", tmp_path / "rules.toml"
    inbox.mkdir()
    broken = '\n[[routing]]\nid = "other_province"\nbody = ["out-of-province", "ramq"]\n'
    rules.write_text(DEFAULT_RULES.read_text() + broken + "patterns = ['\\bontario\\b']\n")
    settings = GatewaySettings.model_validate(
        {
            "kafka": kafka_settings,
            "data_dir": data_dir,
            "postal": {"inbox": inbox, "workers": 1},
            "normalizer": {"rules": rules},
        }
    )
    first, second = scanned_letters()[:2]
    batch = save_tiff([first.page, blank_page(), second.page], inbox / "batch-12.tif")
    scan_key = f"postal:{hashlib.sha256(batch.read_bytes()).hexdigest()}"
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await complaints.mark()
    assert await quarantine(settings, kafka_settings, batch) == PROCESSED
    [published] = await complaints.read(1, timeout_s=60)
    assert json.loads(published.value)["id"] == event_id("complaint.received", f"{scan_key}:1")

    rules.write_text(rules.read_text().replace('["out-of-province", "ramq"]', '"out-of-province"'))
    env = {
        **os.environ,
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_POSTAL_INBOX": str(inbox),
        "GATEWAY_POSTAL_WORKERS": "1",
        "GATEWAY_NORMALIZER_RULES": str(rules),
    }
    record_id = event_id("intake.rejected", f"{scan_key}:2")
    await complaints.mark()
    code, out, err = await cli(env, "redrive", record_id)
    assert code == 0, err
    assert "published 1\t" in out
    assert "nothing moved" in out  # the scan is in processed/ already
    [record] = await complaints.read_to_end()
    event = json.loads(record.value)
    assert event["id"] == event_id("complaint.received", f"{scan_key}:2")
    assert event["data"]["routing"] == [{"body": "out-of-province", "rule": "other_province"}]
    assert event["data"]["complainant"]["phone"] == "+15819980042"
