"""JSON Schemas of every event type, generated from the models (``intake-gateway schema export``).

The checked-in copies in ``schemas/`` are what downstream systems validate against; a test fails
when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.events.envelope import EVENT_SPECS, schema_uri

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schemas() -> dict[str, dict[str, Any]]:
    """Schema file name (``complaint.received.v1.json``) -> JSON Schema of the whole CloudEvent."""
    schemas: dict[str, dict[str, Any]] = {}
    for spec in EVENT_SPECS:
        schema = spec.envelope.model_json_schema(mode="serialization")
        schemas[f"{spec.schema_name}.json"] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": schema_uri(spec.event_type),
            **schema,
        }
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
