"""``intake-gateway erase REFERENCE``: a complaint's personal data erased on request (GDPR
art. 17, Québec's Law 25), then ``complaint.erased`` published so case systems erase theirs.

1. Refused for a reference on legal hold (release it first: the hold says why it is kept).
2. Its objects (raw inputs, attachments, the raw copies of dead-letter records about it):
   **crypto-shredding**, each object's data keys destroyed, then the object deleted; an object
   another complaint also refers to (the same attachment sent twice), or a dead-letter record
   of another input still holds, is kept for it.
3. Its rows: catalog, the notifier's contacts and ledger, the keyed hashes of its contacts,
   duplicate index, idempotency answers naming it, tracker, dead-letter records about it, the
   record of operators' reads of it.
4. ``complaint.erased`` on ``complaints.v1`` (its id derives from the reference), then the
   erasure recorded: reference and time, nothing else.

Run again (it was cut short, Kafka was away), it finishes what is left and publishes the same
event again: consumers see a repeat.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from gateway.errors import GatewayError
from gateway.events.envelope import make_event
from gateway.events.erasure import ComplaintErased
from gateway.publisher import KafkaPublisher
from gateway.store.claims import ClaimStore
from gateway.store.complaint_data import ComplaintData
from gateway.store.privacy import PrivacyRecords

log = structlog.get_logger(__name__)

SOURCE = "urn:intake-gateway:privacy"


class ErasureRefused(GatewayError):
    """The complaint may not be erased now (on legal hold); the message says why."""


@dataclass
class ErasureReport:
    reference: str
    erased_at: datetime
    event_id: str = ""
    counts: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        said = [f"erased\t{self.reference}\t{self.erased_at.isoformat(timespec='seconds')}"]
        said += [f"{name}\t{count}" for name, count in sorted(self.counts.items())]
        return [*said, f"published\tcomplaint.erased\t{self.event_id}"]


@dataclass
class Erasure:
    data: ComplaintData
    privacy: PrivacyRecords
    claims: ClaimStore
    publisher: KafkaPublisher

    async def erase(self, reference: str, now: datetime | None = None) -> ErasureReport:
        hold = await self.privacy.hold_of(reference)
        if hold is not None:
            when = hold.placed_at.isoformat(timespec="seconds")
            msg = f"{reference} is on legal hold since {when} by {hold.placed_by}"
            msg += f" ({hold.note})" if hold.note else ""
            raise ErasureRefused(f"{msg}: nothing erased; release the hold first")
        erased_at = await self.privacy.erased_at(reference) or now or datetime.now(UTC)
        report = ErasureReport(reference, erased_at)
        await self._objects(reference, report)
        report.counts["catalog_rows"] += await self.data.forget_catalog(reference)
        report.counts.update(await self.data.forget_state(reference, answers=True))
        report.counts["tracker_rows"] += await self.data.forget_tracker(reference)
        report.counts["access_records"] += await self.privacy.forget_accesses(reference)
        await self.data.compact()
        event = make_event(
            ComplaintErased(reference=reference, erased_at=erased_at),
            source_key=f"erasure:{reference}",
            source=SOURCE,
            time=erased_at,
        )
        await self.publisher.publish(event)
        report.event_id = event.id
        await self.privacy.record_erasure(reference, erased_at)
        log.info("privacy.erased", reference=reference, **report.counts)
        return report

    async def _objects(self, reference: str, report: ErasureReport) -> None:
        records = await self.data.dlq_of(reference)
        ids = [record.record_id for record in records]
        objects = {sha256 for sha256, _ in await self.data.objects_of(reference)}
        objects |= {record.sha256 for record in records if record.sha256}
        for sha256 in sorted(objects):
            others = await self.data.holders(sha256) - {reference}
            if others or await self.data.dlq_needs(sha256, ids):
                report.counts["objects_kept_for_others"] += 1
                continue
            await self.claims.delete(sha256)
            report.counts["objects_shredded"] += 1
        if ids:
            report.counts["dlq_records"] += await self.data.forget_dlq(ids)
