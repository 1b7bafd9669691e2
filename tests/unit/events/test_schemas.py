"""The checked-in JSON Schemas: in step with the models, and backward compatible.

``tests/fixtures/events/v1/`` holds events as v1 producers wrote them. They must stay valid under
the checked-in schemas and parse with the current models: a change that breaks them needs a new
schema version (``.v2``), not an edit of v1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway.events.asyncapi import FILE_NAME as ASYNCAPI_FILE
from gateway.events.envelope import EVENT_SPECS, SPEC_BY_TYPE, parse_event
from gateway.events.schemas import event_schemas, export_schemas, render
from tests.conftest import FIXTURES, REPO

SCHEMAS = REPO / "schemas"
GOLDEN = sorted((FIXTURES / "events" / "v1").glob("*.json"))


def checked_in(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def test_every_event_type_has_a_checked_in_schema_identical_to_the_models() -> None:
    generated = event_schemas()
    checked = [path.name for path in SCHEMAS.glob("*.json") if path.name != ASYNCAPI_FILE]
    assert sorted(generated) == sorted(checked)
    for name, schema in generated.items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == render(schema), (
            f"schemas/{name} drifted from the models: run `intake-gateway schema export schemas`"
        )


def test_schema_export_writes_one_file_per_event_type(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    assert {path.name for path in written} == {f"{spec.schema_name}.json" for spec in EVENT_SPECS}


def test_every_event_type_has_a_golden_v1_example() -> None:
    covered = {json.loads(path.read_text())["type"] for path in GOLDEN}
    assert covered == set(SPEC_BY_TYPE)


@pytest.mark.parametrize("example", GOLDEN, ids=lambda path: path.stem)
def test_given_a_v1_event_then_it_stays_valid_under_schema_and_models(example: Path) -> None:
    event = json.loads(example.read_text(encoding="utf-8"))
    schema = checked_in(f"{SPEC_BY_TYPE[event['type']].schema_name}.json")
    jsonschema.Draft202012Validator(schema).validate(event)
    parsed = parse_event(example.read_bytes())
    assert parsed.id == event["id"]
    assert contained(event["data"], parsed.data.model_dump(mode="json")), "a v1 field was lost"


def contained(old: Any, new: Any) -> bool:
    """True when every value of ``old`` is in ``new`` (which may have more keys)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(
            key in new and contained(value, new[key]) for key, value in old.items()
        )
    if isinstance(old, list):
        return isinstance(new, list) and len(old) == len(new) and all(map(contained, old, new))
    return bool(old == new)


@pytest.mark.parametrize(
    ("mutation", "why"),
    [
        (lambda e: e["data"].pop("reference"), "reference is required"),
        (lambda e: e["data"].update(channel="fax"), "channel is a closed set"),
        (lambda e: e["data"].update(reference="PL-123"), "reference has a shape"),
        (lambda e: e["data"].update(secret="x"), "unknown fields are refused"),
        (lambda e: e.update(specversion="0.3"), "CloudEvents 1.0 only"),
        (lambda e: e["data"].update(received_at="2026-11-23T14:05:12"), "time zone required"),
    ],
)
def test_given_a_broken_event_then_the_checked_in_schema_refuses_it(
    mutation: Any, why: str
) -> None:
    event = json.loads((FIXTURES / "events/v1/complaint.received.json").read_text())
    mutation(event)
    validator = jsonschema.Draft202012Validator(
        checked_in("complaint.received.v1.json"), format_checker=jsonschema.FormatChecker()
    )
    assert not validator.is_valid(event), why
