"""The AsyncAPI 3.0 document: valid under the official schema, one channel per topic with each
event type in exactly its topic's channel, payloads that are the events' schemas, and in step
with the checked-in ``schemas/asyncapi.json``."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest

from gateway import __version__
from gateway.events import topics
from gateway.events.asyncapi import (
    CONSUMED,
    FILE_NAME,
    PUBLISHED_ELSEWHERE,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    TRACKED,
    asyncapi_document,
)
from gateway.events.envelope import CONTENT_TYPE, EVENT_SPECS, SPEC_BY_TYPE, parse_event
from gateway.events.schemas import render
from gateway.notifier.service import HANDLED_TYPES
from gateway.publisher import HEADERS, route
from gateway.settings import KafkaSettings
from gateway.tracker.service import TRACKED_TYPES
from tests.conftest import FIXTURES, REPO

SPEC_SCHEMA = FIXTURES / "asyncapi" / "asyncapi-3.0.0.schema.json"
GOLDEN = sorted((FIXTURES / "events" / "v1").glob("*.json"))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


@pytest.fixture(scope="module")
def spec_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SPEC_SCHEMA.read_text(encoding="utf-8")))


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The value a local ``$ref`` (``#/a/b``) points to; KeyError when it points nowhere."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_the_document_is_valid_under_the_asyncapi_3_schema(
    document: dict[str, Any], spec_validator: jsonschema.Draft7Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in spec_validator.iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == __version__
    assert document["info"]["license"]["name"] == "Apache-2.0"


@pytest.mark.parametrize(
    ("mutation", "why"),
    [
        (lambda d: d["operations"]["send.complaints.v1"].update(action="publish"), "2.x verb"),
        (lambda d: d["servers"]["plaintext"].pop("protocol"), "a server needs its protocol"),
        (lambda d: d["components"]["securitySchemes"]["plain"].update(type="sasl"), "no type"),
        (lambda d: d["channels"]["complaints.v1"].update(address=1), "address is a string"),
    ],
)
def test_given_a_broken_document_then_the_asyncapi_schema_refuses_it(
    document: dict[str, Any], spec_validator: jsonschema.Draft7Validator, mutation: Any, why: str
) -> None:
    broken = copy.deepcopy(document)
    mutation(broken)
    assert not spec_validator.is_valid(broken), why


def test_every_reference_points_into_the_document(document: dict[str, Any]) -> None:
    """The spec's schema checks a ``$ref``'s shape, not where it leads."""
    for ref in refs(document):
        assert ref.startswith("#/"), ref
        resolve(document, ref)


def test_one_channel_per_topic_with_its_address(document: dict[str, Any]) -> None:
    assert set(document["channels"]) == set(topics.ALL)
    for topic, channel in document["channels"].items():
        assert channel["address"] == topic


def test_every_event_type_is_a_message_of_exactly_its_topics_channel(
    document: dict[str, Any],
) -> None:
    for spec in EVENT_SPECS:
        holders = [
            topic
            for topic, channel in document["channels"].items()
            if spec.event_type in channel["messages"]
        ]
        assert holders == [spec.topic], spec.event_type
    listed = [name for channel in document["channels"].values() for name in channel["messages"]]
    assert sorted(listed) == sorted(SPEC_BY_TYPE)


def test_each_message_is_a_structured_cloudevent_of_its_type(document: dict[str, Any]) -> None:
    (content_type,) = (value.decode() for name, value in HEADERS if name == "content-type")
    for spec in EVENT_SPECS:
        message = resolve(
            document, document["channels"][spec.topic]["messages"][spec.event_type]["$ref"]
        )
        assert message["contentType"] == CONTENT_TYPE == content_type
        assert message["headers"]["properties"]["content-type"]["const"] == content_type
        assert set(message["headers"]["required"]) == {name for name, _ in HEADERS}
        payload = resolve(document, message["payload"]["$ref"])
        assert payload["properties"]["type"]["const"] == spec.event_type
        data = resolve(document, payload["properties"]["data"]["$ref"])
        assert data["title"] == spec.data.__name__


@pytest.mark.parametrize("example", GOLDEN, ids=lambda path: path.stem)
def test_given_a_v1_event_then_its_message_payload_and_key_accept_it(
    document: dict[str, Any], example: Path
) -> None:
    """The payload is the event's schema, and the key the publisher gives is the one documented."""
    event = json.loads(example.read_text(encoding="utf-8"))
    spec = SPEC_BY_TYPE[event["type"]]
    message = document["components"]["messages"][spec.event_type]
    within = {"components": document["components"]}
    payload = jsonschema.Draft202012Validator(
        {**within, **message["payload"]}, format_checker=jsonschema.FormatChecker()
    )
    payload.validate(event)
    topic, key = route(parse_event(example.read_bytes()))
    assert document["channels"][topic]["messages"][spec.event_type]
    jsonschema.Draft202012Validator({**within, **message["bindings"]["kafka"]["key"]}).validate(key)


def test_given_another_event_type_then_the_payload_refuses_it(document: dict[str, Any]) -> None:
    event = json.loads((FIXTURES / "events/v1/notification.sent.json").read_text())
    payload = document["components"]["messages"]["complaint.received"]["payload"]
    validator = jsonschema.Draft202012Validator({"components": document["components"], **payload})
    assert not validator.is_valid(event)


def test_send_is_what_the_gateway_publishes_and_receive_what_the_notifier_acts_on(
    document: dict[str, Any],
) -> None:
    assert CONSUMED == HANDLED_TYPES, "the notifier's handled types changed: update CONSUMED"
    assert TRACKED == TRACKED_TYPES, "the tracker's types changed: update TRACKED"
    by_action: dict[str, set[str]] = {"send": set(), "receive": set(), "tracker": set()}
    for name, operation in document["operations"].items():
        channel = resolve(document, operation["channel"]["$ref"])
        reader = "tracker" if name.endswith(".tracker") else operation["action"]
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(f"{operation['channel']['$ref']}/messages/")
            by_action[reader].add(resolve(document, ref["$ref"])["$ref"])
        assert channel["address"] in topics.ALL
    as_refs = lambda types: {f"#/components/messages/{name}" for name in types}  # noqa: E731
    assert by_action["send"] == as_refs(set(SPEC_BY_TYPE) - set(PUBLISHED_ELSEWHERE))
    assert by_action["receive"] == as_refs(CONSUMED)
    assert by_action["tracker"] == as_refs(TRACKED)
    tracker = document["operations"]["receive.complaints.v1.tracker"]["bindings"]["kafka"]
    assert tracker["groupId"]["default"] == "intake-gateway-tracker"
    assert "complaint.status_changed" not in {r.rsplit("/", 1)[1] for r in by_action["send"]}


def test_one_server_per_security_protocol_with_the_bootstrap_variable(
    document: dict[str, Any],
) -> None:
    fields = KafkaSettings.model_fields
    assert set(SECURITY_PROTOCOLS) == set(get_args(fields["security_protocol"].annotation))
    mechanisms = {
        arg for part in get_args(fields["sasl_mechanism"].annotation) for arg in get_args(part)
    }
    assert set(SASL_MECHANISMS) == mechanisms
    for name, server in document["servers"].items():
        assert server["host"] == "{bootstrap}"
        variable = resolve(document, server["variables"]["bootstrap"]["$ref"])
        assert variable["default"] == KafkaSettings().bootstrap
        security = {resolve(document, ref["$ref"])["type"] for ref in server.get("security", [])}
        assert security == (set(SASL_MECHANISMS.values()) if "sasl" in name else set())
        assert server["protocol"] == ("kafka-secure" if name.endswith("ssl") else "kafka")


def test_the_checked_in_document_is_identical_to_the_models(document: dict[str, Any]) -> None:
    checked_in = (REPO / "schemas" / FILE_NAME).read_text(encoding="utf-8")
    assert checked_in == render(document), (
        f"schemas/{FILE_NAME} drifted from the models: run `intake-gateway schema export schemas`"
    )


def test_schema_export_writes_the_document_beside_the_schemas(tmp_path: Path) -> None:
    """GIVEN the command of the contract WHEN it exports THEN asyncapi.json is among the files."""
    out = tmp_path / "out"
    environment = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never reached
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "schema", "export", str(out)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert str(out / FILE_NAME) in done.stdout.splitlines()
    assert (out / FILE_NAME).read_text(encoding="utf-8") == render(asyncapi_document())
    assert len(list(out.glob("*.json"))) == len(EVENT_SPECS) + 1
