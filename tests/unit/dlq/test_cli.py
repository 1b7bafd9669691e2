"""``intake-gateway dlq``'s own parsing and lines (``gateway.dlq.cli``)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from gateway.cli import build_parser
from gateway.dlq.cli import list_line, outcome_text, since
from gateway.dlq.operations import RedriveOutcome
from gateway.store.dlq import DlqRecord, DlqStatus

RECORD = DlqRecord(
    id="0678c69b-bda6-581e-b3b1-19be52674ef7",
    channel="postal",
    reason_code="corrupt_pdf",
    reason="the PDF cannot be opened:\n  data format error",
    source_key="postal:ab",
    source="urn:intake-gateway:postal",
    source_id="scan.pdf",
    source_uri="file:///objects/ab",
    received_at=datetime(2026, 12, 1, 8, tzinfo=UTC),
    recorded_at=datetime(2026, 12, 1, 8, 0, 5, tzinfo=UTC),
)


def test_since_takes_durations_and_dates() -> None:
    assert abs(since("7d") - (datetime.now(UTC) - timedelta(days=7))) < timedelta(seconds=5)
    assert abs(since("30m") - (datetime.now(UTC) - timedelta(minutes=30))) < timedelta(seconds=5)
    assert since("2026-12-01T10:00+01:00") == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert since("2026-12-01").tzinfo is not None  # local midnight
    with pytest.raises(argparse.ArgumentTypeError):
        since("yesterday")


def test_the_dlq_commands_parse_as_the_contract_names_them() -> None:
    parser = build_parser()
    listed = parser.parse_args(["dlq", "list", "--since", "2d", "--reason", "no_text"])
    assert (listed.dlq_command, listed.reason, listed.all) == ("list", "no_text", False)
    redrive = parser.parse_args(["dlq", "redrive", "0678c69b", "--reference", "PL-1"])
    assert (redrive.id, redrive.reference) == ("0678c69b", "PL-1")
    assert parser.parse_args(["dlq", "show", "0678"]).id == "0678"
    assert parser.parse_args(["dlq", "dismiss", "0678", "--note", "spam"]).note == "spam"


def test_a_record_is_one_line_of_tab_separated_fields() -> None:
    line = list_line(RECORD)
    assert line.split("\t") == [
        RECORD.id,
        "2026-12-01T08:00:05+00:00",
        "postal",
        "corrupt_pdf",
        "the PDF cannot be opened: data format error",
    ]
    closed = DlqRecord(**{**RECORD.__dict__, "status": DlqStatus.DISMISSED})
    assert list_line(closed).endswith("\tdismissed")


def test_a_redrive_says_what_it_published() -> None:
    done = RedriveOutcome(RECORD, True, ("e-1", "e-2"), 1, "scan moved")
    assert outcome_text(done) == (
        f"redriven\t{RECORD.id}\tpublished 1, published before 1\te-1 e-2\tscan moved"
    )
    still = RedriveOutcome(RECORD, False, note="no_text: no page carries any text")
    assert outcome_text(still) == f"still rejected\t{RECORD.id}\tno_text: no page carries any text"
