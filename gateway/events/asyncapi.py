"""AsyncAPI 3.0 document of the gateway's Kafka topics, generated from the event models.

One channel per topic (``gateway.events.topics``) and, on it, one message per event type that the
type's ``EventSpec`` routes there. A message's payload is the whole CloudEvent in structured mode,
whose ``data`` is that event's schema (the same models as ``schemas/*.v1.json``, their shared
definitions under ``components.schemas``). ``send`` operations are what the gateway publishes,
``receive`` operations what its notifier's and its tracker's consumer groups act on (``.tracker``
for the latter's). One server per value of
``GATEWAY_KAFKA_SECURITY_PROTOCOL``.

Served at ``GET /asyncapi.json`` and checked in as ``schemas/asyncapi.json`` by
``intake-gateway schema export``; a test fails when the checked-in copy drifts from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.events import topics
from gateway.events.envelope import CONTENT_TYPE, EVENT_SPECS, EventSpec
from gateway.events.schemas import render
from gateway.settings import KafkaSettings, NotifierSettings, TrackerSettings

ASYNCAPI_VERSION: Final = "3.0.0"
FILE_NAME: Final = "asyncapi.json"
KAFKA_BINDING: Final = "0.5.0"
SCHEMAS_REF: Final = "#/components/schemas/{model}"

# Event types the gateway reads but other systems publish, and who they are.
PUBLISHED_ELSEWHERE: Final = {"complaint.status_changed": "case systems"}

# What the notifier's consumer group acts on (``gateway.notifier.service.HANDLED_TYPES``): it
# reads every record of these types' topics and skips the others after reading type and source.
CONSUMED: Final = frozenset(
    {
        "complaint.received",
        "complaint.document_added",
        "complaint.status_changed",
        "notification.requested",
    }
)

# What the tracker's consumer group folds into where each complaint stands
# (``gateway.tracker.service.TRACKED_TYPES``); it skips the others after reading their type.
TRACKED: Final = frozenset(
    {
        "complaint.received",
        "complaint.document_added",
        "complaint.status_changed",
        "complaint.feedback_received",
        "complaint.erased",
        "notification.sent",
    }
)

# The data field that is the record's key (``gateway.publisher.route``); else ``reference``.
KEY_FIELDS: Final = {topics.DLQ: "channel"}
KEY_DESCRIPTIONS: Final = {
    "reference": "the complaint's reference (`data.reference`, also the CloudEvent `subject`)",
    "channel": "the channel name, or the reading service (`data.channel`)",
}

TOPIC_DESCRIPTIONS: Final = {
    topics.COMPLAINTS: "Every event about a complaint, in order.",
    topics.NOTIFICATIONS: "Each notification the notifier is asked to send, and its outcome.",
    topics.DLQ: "Inputs that could not become a complaint, with the reason and a pointer to "
    "the stored raw input; records the notifier could not read.",
}

# GATEWAY_KAFKA_SECURITY_PROTOCOL -> (AsyncAPI protocol, SASL authentication)
SECURITY_PROTOCOLS: Final = {
    "PLAINTEXT": ("kafka", False),
    "SSL": ("kafka-secure", False),
    "SASL_PLAINTEXT": ("kafka", True),
    "SASL_SSL": ("kafka-secure", True),
}
TLS_NOTE: Final = (
    ": TLS, the broker's certificate checked against `GATEWAY_KAFKA_CA_FILE` (default: the "
    "system's CAs); the gateway presents no client certificate"
)
# GATEWAY_KAFKA_SASL_MECHANISM -> AsyncAPI security scheme type
SASL_MECHANISMS: Final = {
    "PLAIN": "plain",
    "SCRAM-SHA-256": "scramSha256",
    "SCRAM-SHA-512": "scramSha512",
}

HEADERS: Final = {
    "type": "object",
    "properties": {
        "content-type": {
            "type": "string",
            "const": CONTENT_TYPE,
            "description": "CloudEvents structured mode (UTF-8 bytes in the Kafka header)",
        }
    },
    "required": ["content-type"],
}

INFO_DESCRIPTION: Final = (
    "The Kafka topics of the multi-channel complaints intake gateway. Values are CloudEvents 1.0 "
    "in structured JSON mode; `data` is the event's payload, described by `dataschema` (the JSON "
    "Schemas of `schemas/`). An event's `id` is deterministic for a given source input, so a "
    "redelivered input yields the same `id`."
)


def asyncapi_document() -> dict[str, Any]:
    """The whole AsyncAPI 3.0 document (a JSON-ready dict)."""
    schemas, payloads = _schemas()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:intake-gateway",
        "info": {
            "title": "intake-gateway",
            "version": __version__,
            "description": INFO_DESCRIPTION,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": {topic: _channel(topic) for topic in topics.ALL},
        "operations": _operations(),
        "components": {
            "schemas": schemas,
            "messages": {
                spec.event_type: _message(spec, payloads, schemas) for spec in EVENT_SPECS
            },
            "securitySchemes": _security_schemes(),
            "serverVariables": {"bootstrap": _bootstrap_variable()},
        },
    }


def export_asyncapi(directory: Path) -> Path:
    """Write the document into ``directory`` as ``asyncapi.json``; returns the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    path.write_text(render(asyncapi_document()), encoding="utf-8")
    return path


def _schemas() -> tuple[dict[str, Any], dict[str, str]]:
    """Every envelope's schema and the definitions they share, referenced under
    ``components.schemas``; and each event type's envelope schema name there."""
    keys, top = models_json_schema(
        [(spec.envelope, "serialization") for spec in EVENT_SPECS], ref_template=SCHEMAS_REF
    )
    payloads = {
        spec.event_type: keys[(spec.envelope, "serialization")]["$ref"].rsplit("/", 1)[1]
        for spec in EVENT_SPECS
    }
    return top["$defs"], payloads


def _specs_on(topic: str) -> list[EventSpec]:
    return [spec for spec in EVENT_SPECS if spec.topic == topic]


def _key_field(topic: str) -> str:
    return KEY_FIELDS.get(topic, "reference")


def _channel(topic: str) -> dict[str, Any]:
    key = KEY_DESCRIPTIONS[_key_field(topic)]
    return {
        "address": topic,
        "title": topic,
        "description": f"{TOPIC_DESCRIPTIONS.get(topic, '')} Record key: {key}.".strip(),
        "messages": {
            spec.event_type: {"$ref": f"#/components/messages/{spec.event_type}"}
            for spec in _specs_on(topic)
        },
    }


def _message(spec: EventSpec, payloads: dict[str, str], schemas: dict[str, Any]) -> dict[str, Any]:
    data_schema = schemas[spec.data.__name__]
    field = _key_field(spec.topic)
    key = {**data_schema["properties"][field], "description": KEY_DESCRIPTIONS[field]}
    description = data_schema.get("description", "")
    if spec.event_type in PUBLISHED_ELSEWHERE:
        description = f"{description} Published by {PUBLISHED_ELSEWHERE[spec.event_type]}.".strip()
    message: dict[str, Any] = {
        "name": spec.event_type,
        "title": spec.event_type,
        "contentType": CONTENT_TYPE,
        "headers": HEADERS,
        "payload": {"$ref": SCHEMAS_REF.format(model=payloads[spec.event_type])},
        "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
    }
    if description:
        message["description"] = description
    return message


def _operations() -> dict[str, Any]:
    client_id = KafkaSettings().client_id
    notifier, tracker = NotifierSettings(), TrackerSettings()
    operations: dict[str, Any] = {}
    for topic in topics.ALL:
        specs = _specs_on(topic)
        sent = [spec for spec in specs if spec.event_type not in PUBLISHED_ELSEWHERE]
        if sent:
            operations[f"send.{topic}"] = _operation(
                "send",
                topic,
                sent,
                "The gateway publishes these events (acks=all, idempotent producer).",
                {"clientId": _setting("GATEWAY_KAFKA_CLIENT_ID", client_id)},
            )
        consumed = [spec for spec in specs if spec.event_type in CONSUMED]
        if consumed:
            operations[f"receive.{topic}"] = _operation(
                "receive",
                topic,
                consumed,
                "The notifier's consumer group acts on these events and skips the others.",
                {
                    "groupId": _setting("GATEWAY_NOTIFIER_GROUP_ID", notifier.group_id),
                    "clientId": _setting("GATEWAY_KAFKA_CLIENT_ID", f"{client_id}-notifier"),
                },
            )
        tracked = [spec for spec in specs if spec.event_type in TRACKED]
        if tracked:
            operations[f"receive.{topic}.tracker"] = _operation(
                "receive",
                topic,
                tracked,
                "The tracker's consumer group folds these events into where each complaint"
                " stands (status look-up, indicators) and skips the others.",
                {
                    "groupId": _setting("GATEWAY_TRACKER_GROUP_ID", tracker.group_id),
                    "clientId": _setting("GATEWAY_KAFKA_CLIENT_ID", f"{client_id}-tracker"),
                },
            )
    return operations


def _operation(
    action: str, topic: str, specs: list[EventSpec], summary: str, binding: dict[str, Any]
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{topic}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{topic}/messages/{spec.event_type}"} for spec in specs],
        "bindings": {"kafka": {**binding, "bindingVersion": KAFKA_BINDING}},
    }


def _setting(variable: str, default: str) -> dict[str, Any]:
    return {"type": "string", "default": default, "description": f"`{variable}`"}


def _servers() -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for name, (protocol, sasl) in SECURITY_PROTOCOLS.items():
        server: dict[str, Any] = {
            "host": "{bootstrap}",
            "protocol": protocol,
            "title": name,
            "description": f"`GATEWAY_KAFKA_SECURITY_PROTOCOL={name}`"
            + (TLS_NOTE if protocol == "kafka-secure" else ""),
            "variables": {"bootstrap": {"$ref": "#/components/serverVariables/bootstrap"}},
        }
        if sasl:
            server["security"] = [
                {"$ref": f"#/components/securitySchemes/{scheme}"}
                for scheme in SASL_MECHANISMS.values()
            ]
        servers[name.lower()] = server
    return servers


def _security_schemes() -> dict[str, Any]:
    return {
        scheme: {
            "type": scheme,
            "description": f"`GATEWAY_KAFKA_SASL_MECHANISM={mechanism}`, with "
            "`GATEWAY_KAFKA_SASL_USERNAME` and `GATEWAY_KAFKA_SASL_PASSWORD`",
        }
        for mechanism, scheme in SASL_MECHANISMS.items()
    }


def _bootstrap_variable() -> dict[str, Any]:
    return {
        "default": KafkaSettings().bootstrap,
        "description": "`GATEWAY_KAFKA_BOOTSTRAP`: the brokers, `host:port[,host:port...]`",
    }
