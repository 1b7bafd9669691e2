"""Web forms: a submission (a form builder's webhook, or the gateway's own page) as a
``RawMessage``.

A form with no field mapping posts the canonical names (``name``, ``email``, ``phone``,
``postal_address``, ``health_insurance_number``, ``kind``, ``subject``, ``body``, ``anonymous``,
``language``, ``represented_person`` {``name``, ``health_insurance_number``, ``relationship``}).
A form builder's own names are mapped per form (``GATEWAY_FORM_FIELDS``): ``{"their.dotted.path":
"canonical" or "represented_person.name"}``. Multipart forms may write nested fields as
``represented_person.name`` or ``represented_person[name]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gateway.channels.raw import RawMessage
from gateway.events.common import Attachment, Channel
from gateway.events.complaint import Kind
from gateway.normalizers.contacts import normalise_email, normalise_phone
from gateway.reference import parse_reference

_NESTED = re.compile(r"^(\w+)(?:\.(\w+)|\[(\w+)\])$")


class RepresentedInput(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    health_insurance_number: str | None = Field(default=None, max_length=40)
    relationship: str | None = Field(default=None, max_length=100)


class Submission(BaseModel):
    """The canonical fields of a web submission, validated (422 names the fields at fault)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=1000)
    health_insurance_number: str | None = Field(default=None, max_length=40)
    kind: Kind | None = None
    subject: str | None = Field(default=None, max_length=300)
    body: str = Field(min_length=1, max_length=100_000)
    anonymous: bool = False
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    represented_person: RepresentedInput | None = None
    reference: str | None = Field(default=None, max_length=40, description="follow-up of")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if not value:
            return None
        address = normalise_email(value)
        if address is None:
            raise ValueError("not a valid email address")
        return address

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        region = (info.context or {}).get("default_region", "CA")
        number = normalise_phone(value, region)
        if number is None:
            raise ValueError("not a valid phone number")
        return number

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        return parse_reference(value) if value else None

    @field_validator("kind", "language", "subject", "name", "postal_address", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class InvalidSubmission(Exception):
    """The fields at fault, as (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


def validate_submission(fields: Mapping[str, Any], default_region: str) -> Submission:
    try:
        return Submission.model_validate(fields, context={"default_region": default_region})
    except ValidationError as exc:
        raise InvalidSubmission(
            [
                (
                    ".".join(str(part) for part in error["loc"]) or "body",
                    error["msg"].removeprefix("Value error, "),
                )
                for error in exc.errors()
            ]
        ) from None


def nest_fields(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``represented_person.name`` / ``represented_person[name]`` -> nested objects."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        match = _NESTED.match(key)
        if match:
            inner = match.group(2) or match.group(3)
            group = nested.setdefault(match.group(1), {})
            if isinstance(group, dict):
                group[inner] = value
        else:
            nested[key] = value
    return nested


def map_fields(received: Mapping[str, Any], mapping: Mapping[str, str] | None) -> dict[str, Any]:
    """A form builder's fields under the canonical names (identity when no mapping)."""
    if not mapping:
        return dict(received)
    mapped: dict[str, Any] = {}
    for theirs, ours in mapping.items():
        value = _dotted(received, theirs)
        if value is not None:
            mapped[ours] = value
    return nest_fields(mapped)


def _dotted(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def raw_message(
    submission: Submission,
    *,
    form_id: str,
    submission_key: str,
    received_at: datetime,
    attachments: list[Attachment],
    raw_uri: str | None,
) -> RawMessage:
    """``submission_key``: the idempotency key, or ``sha256:<body hash>`` without one."""
    return RawMessage(
        channel=Channel.WEBFORM,
        source_key=f"webform:{form_id}:{submission_key}",
        source_id=submission_key,
        received_at=received_at,
        text=submission.body,
        subject=submission.subject,
        fields=submission.model_dump(mode="json", exclude_none=True),
        attachments=tuple(attachments),
        raw_uri=raw_uri,
        source=f"urn:intake-gateway:webform:{form_id}",
    )
