"""A web submission and an inbound SMS read again from their raw copies, as a redrive does
(``gateway.dlq.submissions``), on a real file store: the same source key and received time as
when they came, the reasons a stored copy cannot become an input again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.dlq.submissions import SmsRereader, SubmissionRereader
from gateway.errors import InputRejected
from gateway.events.common import Channel
from gateway.notifier.ledger import LedgerEntry
from gateway.settings import GatewaySettings
from gateway.store.claims import FileClaimStore
from gateway.store.dlq import DlqRecord
from gateway.store.sqlite_ledger import SqliteLedger
from gateway.store.sqlite_state import SqliteStateStore

RECEIVED = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


async def record_of(claims: FileClaimStore, raw: bytes, source_key: str, channel: str) -> DlqRecord:
    stored = await claims.put(raw)
    return DlqRecord(
        id="2f1c9a52-0d1e-4f0b-9d3a-6c1b2a3d4e5f",
        channel=channel,
        reason_code="not_a_complaint",
        reason="the input could not be normalised",
        source_key=source_key,
        source="urn:intake-gateway:test",
        source_id=source_key.rsplit(":", 1)[1],
        source_uri=stored.uri,
        received_at=RECEIVED,
        recorded_at=RECEIVED + timedelta(seconds=1),
    )


@pytest.fixture
def claims(tmp_path: Path) -> FileClaimStore:
    return FileClaimStore(tmp_path / "objects")


@pytest.fixture
async def submissions(claims: FileClaimStore, tmp_path: Path) -> SubmissionRereader:
    settings = GatewaySettings.model_validate({"data_dir": tmp_path})
    return SubmissionRereader(settings, claims, SqliteStateStore(None))


async def test_a_json_submission_is_read_again_under_its_own_key_and_time(
    claims: FileClaimStore, submissions: SubmissionRereader
) -> None:
    body = {"name": "Marie Tremblay", "email": "marie@example.org", "body": "Ma carte, encore."}
    record = await record_of(
        claims, json.dumps(body).encode(), "webform:contact-form:key-1", "webform"
    )
    [raw] = await submissions.messages(record, None)
    assert raw.channel == Channel.WEBFORM
    assert (raw.source_key, raw.source_id) == ("webform:contact-form:key-1", "key-1")
    assert raw.received_at == RECEIVED
    assert raw.text == "Ma carte, encore."
    assert raw.fields["email"] == "marie@example.org"
    assert raw.raw_uri == record.source_uri
    assert await submissions.settle(record, [raw]) == ""


@pytest.mark.parametrize(
    ("stored", "reason_code"),
    [
        (b"\xff not json", "invalid_submission"),
        (b"[1, 2]", "invalid_submission"),
        (json.dumps({"name": "Sans texte"}).encode(), "invalid_fields"),
    ],
)
async def test_a_stored_copy_that_is_no_submission_is_refused_with_its_reason(
    claims: FileClaimStore, submissions: SubmissionRereader, stored: bytes, reason_code: str
) -> None:
    record = await record_of(claims, stored, "webform:contact-form:key-2", "webform")
    with pytest.raises(InputRejected) as refused:
        await submissions.messages(record, None)
    assert refused.value.reason_code == reason_code


async def test_an_sms_is_read_again_as_an_answer_to_the_sms_we_sent_that_number(
    claims: FileClaimStore,
) -> None:
    ledger = SqliteLedger(None)
    try:
        await ledger.record(
            LedgerEntry(
                "n-1", "PL-7K3M-9Q2X-HB4G", "acknowledgement", "sms", "sent",
                recipient="+15145550123",
            )
        )  # fmt: skip
        params = {"MessageSid": "SM0123456789abcdef0123456789abcdef", "From": "+15145550123"}
        params["Body"] = "Voici mon numéro de dossier."
        rereader = SmsRereader(claims, ledger)
        record = await record_of(
            claims, json.dumps(params).encode(), f"sms:{params['MessageSid']}", "sms"
        )
        [raw] = await rereader.messages(record, None)
        assert raw.channel == Channel.SMS
        assert raw.source_key == f"sms:{params['MessageSid']}"
        assert raw.sender.phone == "+15145550123"
        assert raw.text == "Voici mon numéro de dossier."
        assert raw.thread_references == ("PL-7K3M-9Q2X-HB4G",)
        assert raw.received_at == RECEIVED
        stranger = {**params, "From": "+15145559999", "MessageSid": "SM" + "f" * 32}
        other = await record_of(
            claims, json.dumps(stranger).encode(), f"sms:{stranger['MessageSid']}", "sms"
        )
        [unknown] = await rereader.messages(other, None)
        assert unknown.thread_references == ()
        garbled = await record_of(claims, b"not json", "sms:SM" + "0" * 32, "sms")
        with pytest.raises(InputRejected) as refused:
            await rereader.messages(garbled, None)
        assert refused.value.reason_code == "invalid_sms"
    finally:
        await ledger.close()
