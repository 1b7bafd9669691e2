"""``complaint.feedback_received.v1``: what the checked-in schema and the model accept and refuse.

The golden example (``tests/fixtures/events/v1/complaint.feedback_received.json``) is checked
with every other v1 event by ``test_schemas``; these are the refusals a consumer relies on.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from gateway.events.envelope import parse_event
from tests.conftest import FIXTURES, REPO

EXAMPLE = FIXTURES / "events" / "v1" / "complaint.feedback_received.json"
SCHEMA = REPO / "schemas" / "complaint.feedback_received.v1.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_given_the_v1_example_then_schema_and_model_accept_it_with_and_without_comment() -> None:
    event = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    validator().validate(event)
    assert parse_event(EXAMPLE.read_bytes()).data.rating == 4
    event["data"].pop("comment")
    event["data"].pop("language")
    validator().validate(event)
    assert parse_event(json.dumps(event)).data.comment is None


@pytest.mark.parametrize(
    ("mutation", "why"),
    [
        (lambda e: e["data"].update(rating=0), "the scale starts at 1"),
        (lambda e: e["data"].update(rating=6), "the scale ends at 5"),
        (lambda e: e["data"].update(comment="x" * 2001), "comments are bounded"),
        (lambda e: e["data"].update(email="marie@example.org"), "no personal field"),
        (lambda e: e["data"].pop("reference"), "the complaint is named"),
        (lambda e: e["data"].update(given_at="2026-12-22T09:30:00"), "time zone required"),
    ],
)
def test_given_a_broken_feedback_event_then_schema_and_model_refuse_it(
    mutation: Any, why: str
) -> None:
    event = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    mutation(event)
    assert not validator().is_valid(event), why
    with pytest.raises(ValidationError):
        parse_event(json.dumps(event))
