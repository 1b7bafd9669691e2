"""The intake: a channel's ``RawMessage`` -> normalizers -> CloudEvent -> Kafka.

``submit`` returns the published event only once Kafka acknowledged it; the channel then
acknowledges its source. An input the normalizers cannot turn into a complaint is reported on
``intake.dlq.v1`` (reason + pointer to the raw copy the channel kept) and ``InputRejected`` is
raised, so the channel can quarantine it. ``KafkaUnavailable`` propagates: nothing was
acknowledged, the channel retries later.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from gateway.channels.raw import RawMessage
from gateway.dlq.records import rejected_record
from gateway.errors import InputRejected
from gateway.events.common import Channel, SourceMessage
from gateway.events.complaint import ComplaintReceived, DocumentAdded
from gateway.events.dlq import IntakeRejected
from gateway.events.envelope import CloudEvent, make_event
from gateway.normalizers import Normalizer
from gateway.publisher import KafkaPublisher
from gateway.store.catalog import CatalogEntry, ObjectCatalog, sha256_of_uri
from gateway.store.dlq import DlqStore
from gateway.store.patience import until_available
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)


class Intake:
    """``contacts``: where the contacts given with each complaint are remembered (hashed), so a
    person can later send documents for it by giving the reference and one of them.
    ``catalog``: where each object a published event points to is recorded (its name, type and
    complaint), for the case systems that fetch it and the auditors who ask who did.
    ``dlq``: where each rejection is kept as a record to redrive or dismiss (``gateway.dlq``)."""

    def __init__(
        self,
        normalizer: Normalizer,
        publisher: KafkaPublisher,
        contacts: StateStore | None = None,
        catalog: ObjectCatalog | None = None,
        dlq: DlqStore | None = None,
    ) -> None:
        self._normalizer = normalizer
        self._publisher = publisher
        self._contacts = contacts
        self._catalog = catalog
        self._dlq = dlq

    async def submit(self, raw: RawMessage) -> CloudEvent[Any]:
        """Normalize and publish one input; returns the event Kafka acknowledged."""
        try:
            # CPU-bound (parsing, language models) and a local SQLite look-up: off the loop.
            payload = await asyncio.to_thread(self._normalizer.normalize, raw)
        except (ValidationError, ValueError) as exc:
            await self.reject(raw, "not_a_complaint", f"the input could not be normalised: {exc}")
            raise InputRejected("not_a_complaint", str(exc)) from exc
        event = make_event(
            payload, source_key=raw.source_key, source=raw.source, time=raw.received_at
        )
        await self._publisher.publish(event)
        log.info("intake.published", type=event.type, reference=event.subject, channel=raw.channel)
        if self._contacts is not None and isinstance(payload, ComplaintReceived):
            person = payload.complainant
            contacts = self._contacts
            await until_available(
                "contacts",
                lambda: contacts.record_contacts(
                    payload.reference, [c for c in (person.email, person.phone) if c]
                ),
            )
        if self._catalog is not None:
            catalog = self._catalog
            entries = catalog_entries(payload, raw)
            await until_available("catalog", lambda: catalog.record_objects(entries))
        return event

    async def reject(
        self, raw: RawMessage, reason_code: str, reason: str, details: dict[str, str] | None = None
    ) -> CloudEvent[Any]:
        """Report an input that cannot become a complaint on the DLQ (raw copy already kept)."""
        record = IntakeRejected(
            channel=raw.channel,
            reason_code=reason_code,
            reason=reason[:2000],
            source_message=SourceMessage(id=raw.source_id, uri=raw.raw_uri),
            received_at=raw.received_at,
            details=details or {},
        )
        event = make_event(
            record,
            source_key=raw.source_key,
            source=raw.source,
            time=datetime.now(UTC),
        )
        await self._publisher.publish(event)
        if self._dlq is not None:  # once Kafka has it: a record is never ahead of its event
            dlq, kept = self._dlq, rejected_record(event, raw)
            await until_available("dead-letter record", lambda: dlq.add(kept))
        log.warning("intake.rejected", channel=raw.channel, reason_code=reason_code)
        return event


RAW_FORMS = {Channel.EMAIL: ("message/rfc822", ".eml")}  # what a raw copy is, by channel


def catalog_entries(
    payload: ComplaintReceived | DocumentAdded, raw: RawMessage
) -> list[CatalogEntry]:
    """The stored objects an event points to: its attachments, and the raw copy of the input."""
    reference = payload.reference
    entries = [
        CatalogEntry(item.sha256, reference, item.filename, item.media_type, "attachment")
        for item in payload.attachments
        if item.sha256
    ]
    if (raw_sha256 := sha256_of_uri(raw.raw_uri)) is not None:
        media_type, suffix = RAW_FORMS.get(raw.channel, ("application/octet-stream", ""))
        entries.append(
            CatalogEntry(raw_sha256, reference, f"{reference}{suffix}", media_type, "raw")
        )
    return entries
