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
from gateway.errors import InputRejected
from gateway.events.common import SourceMessage
from gateway.events.complaint import ComplaintReceived
from gateway.events.dlq import IntakeRejected
from gateway.events.envelope import CloudEvent, make_event
from gateway.normalizers import Normalizer
from gateway.publisher import KafkaPublisher
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)


class Intake:
    """``contacts``: where the contacts given with each complaint are remembered (hashed), so a
    person can later send documents for it by giving the reference and one of them."""

    def __init__(
        self, normalizer: Normalizer, publisher: KafkaPublisher, contacts: StateStore | None = None
    ) -> None:
        self._normalizer = normalizer
        self._publisher = publisher
        self._contacts = contacts

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
            await self._contacts.record_contacts(
                payload.reference, [c for c in (person.email, person.phone) if c]
            )
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
        log.warning("intake.rejected", channel=raw.channel, reason_code=reason_code)
        return event
