"""CloudEvents envelopes: deterministic ids, typed parsing, routing to topics and keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.events import topics
from gateway.events.common import Channel, Person, SourceMessage
from gateway.events.complaint import ComplaintReceived, DocumentAdded
from gateway.events.dlq import IntakeRejected
from gateway.events.envelope import ComplaintReceivedEvent, make_event, parse_event
from gateway.publisher import route
from gateway.reference import reference_for

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def received(source_key: str) -> ComplaintReceived:
    return ComplaintReceived(
        reference=reference_for(source_key),
        channel=Channel.WEBFORM,
        received_at=NOW,
        body="text",
        complainant=Person(name="A"),
        source_message=SourceMessage(id=source_key),
    )


def test_given_the_same_input_twice_then_the_same_event_id() -> None:
    first = make_event(received("webform:k"), source_key="webform:k")
    again = make_event(received("webform:k"), source_key="webform:k")
    assert first.id == again.id
    assert first.subject == again.subject == reference_for("webform:k")


def test_given_two_event_types_for_one_input_then_their_ids_differ() -> None:
    data = received("webform:k")
    added = DocumentAdded(
        reference=data.reference,
        channel=Channel.WEBFORM,
        received_at=NOW,
        source_message=data.source_message,
    )
    assert make_event(data, source_key="k").id != make_event(added, source_key="k").id


def test_given_a_structured_cloudevent_then_it_parses_into_its_typed_envelope() -> None:
    event = make_event(received("webform:k"), source_key="webform:k", time=NOW)
    parsed = parse_event(event.model_dump_json())
    assert isinstance(parsed, ComplaintReceivedEvent)
    assert parsed == event


def test_given_an_unknown_type_then_parsing_says_so() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        parse_event('{"type": "complaint.deleted"}')


def test_complaint_events_are_keyed_by_reference_and_dlq_records_by_channel() -> None:
    complaint = make_event(received("webform:k"), source_key="webform:k")
    assert route(complaint) == (topics.COMPLAINTS, reference_for("webform:k"))
    rejected = IntakeRejected(
        channel=Channel.EMAIL,
        reason_code="unparseable_mime",
        reason="no body",
        source_message=SourceMessage(id="m"),
        received_at=NOW,
    )
    assert route(make_event(rejected, source_key="email:m")) == (topics.DLQ, "email")
