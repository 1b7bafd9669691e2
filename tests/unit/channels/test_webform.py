"""Web submissions: field mapping, nested fields, validation naming the fields at fault."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.channels.webform import (
    InvalidSubmission,
    map_fields,
    nest_fields,
    raw_message,
    validate_submission,
)
from gateway.events.complaint import Kind
from gateway.reference import reference_for


def test_a_form_builders_fields_are_mapped_to_canonical_names() -> None:
    received = {
        "answers": [{"text": "Ma carte n'est pas arrivée"}],
        "contact": {"full_name": "Marie", "mail": "marie@example.org"},
        "child": "Léo",
    }
    mapping = {
        "answers.0.text": "body",
        "contact.full_name": "name",
        "contact.mail": "email",
        "child": "represented_person.name",
        "missing.path": "phone",
    }
    assert map_fields(received, mapping) == {
        "body": "Ma carte n'est pas arrivée",
        "name": "Marie",
        "email": "marie@example.org",
        "represented_person": {"name": "Léo"},
    }


def test_without_mapping_the_canonical_names_are_taken_as_they_are() -> None:
    assert map_fields({"body": "x"}, None) == {"body": "x"}


def test_multipart_nested_fields_in_both_notations() -> None:
    assert nest_fields(
        {"represented_person.name": "Léo", "represented_person[relationship]": "fils", "body": "x"}
    ) == {
        "represented_person": {"name": "Léo", "relationship": "fils"},
        "body": "x",
    }


def test_a_valid_submission_is_normalised() -> None:
    submission = validate_submission(
        {
            "body": " Texte ",
            "email": "Marie@Example.ORG",
            "phone": "514 555 0123",
            "kind": "comment",
            "anonymous": "false",
            "kind_extra": "ignored",
        },
        "CA",
    )
    assert (submission.body, submission.email, submission.phone, submission.kind) == (
        "Texte",
        "Marie@example.org",
        "+15145550123",
        Kind.COMMENT,
    )


def test_an_invalid_submission_names_every_field_at_fault() -> None:
    with pytest.raises(InvalidSubmission) as caught:
        validate_submission(
            {
                "email": "nope",
                "phone": "12",
                "kind": "praise",
                "language": "french",
                "reference": "PL-0000-0000-0001",
            },
            "CA",
        )
    fields = {field for field, _ in caught.value.errors}
    assert fields == {"body", "email", "phone", "kind", "language", "reference"}


def test_the_raw_message_is_keyed_by_form_and_submission() -> None:
    submission = validate_submission({"body": "x"}, "CA")
    raw = raw_message(
        submission,
        form_id="contact",
        submission_key="k-1",
        received_at=datetime.now(UTC),
        attachments=[],
        raw_uri=None,
    )
    assert raw.source_key == "webform:contact:k-1"
    assert reference_for(raw.source_key).startswith("PL-")
    assert raw.fields == {"body": "x", "anonymous": False}
