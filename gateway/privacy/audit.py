"""Every read of a complaint's stored objects, on record: ``intake-gateway audit REFERENCE``.

Two sources, shown as one trail, oldest first (who, what, when, why):

- reads by case systems through ``GET /v1/objects/{sha256}`` (the object catalog records each:
  the consumer, the object, the bytes asked for);
- reads by operators and commands (``PrivacyRecords.record_access``): a dead-letter record's
  raw copy shown (``intake-gateway dlq show``, ``GET /v1/admin/dlq/{id}``) or read again to be
  redriven (by the command line or the office's page).

A complaint erased since shows that it was, and when (its trail went with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.store.catalog import ObjectCatalog, sha256_of_uri
from gateway.store.complaint_data import ComplaintData
from gateway.store.dlq import DlqRecord
from gateway.store.privacy import Access, PrivacyRecords

CASE_SYSTEM_READ = "case system read (GET /v1/objects)"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str
    what: str
    why: str

    def line(self) -> str:
        return "\t".join(
            [self.at.astimezone(UTC).isoformat(timespec="seconds"), self.who, self.what, self.why]
        )


async def audit_trail(
    reference: str, catalog: ObjectCatalog, data: ComplaintData, privacy: PrivacyRecords
) -> list[AuditEntry]:
    reads = [
        AuditEntry(
            read.read_at,
            read.consumer,
            f"object {read.sha256}" + (f" bytes {read.byte_range}" if read.byte_range else ""),
            CASE_SYSTEM_READ,
        )
        for read in await catalog.reads_of(reference)
    ]
    objects = [sha256 for sha256, _ in await data.objects_of(reference)]
    accesses = [
        AuditEntry(access.at, access.who, access.what, access.why)
        for access in await privacy.accesses(reference, objects)
    ]
    return sorted(reads + accesses, key=lambda entry: entry.at)


async def record_raw_copy_read(
    privacy: PrivacyRecords, record: DlqRecord, who: str, why: str
) -> None:
    """An operator's (or a command's) read of a dead-letter record's raw copy, on record."""
    sha256 = sha256_of_uri(record.source_uri)
    if sha256 is None:
        return
    reference = record.details.get("reference") or None
    what = f"raw copy of dead-letter record {record.id} (object {sha256})"
    access = Access(who, what, why, datetime.now(UTC), sha256, reference)
    await privacy.record_access(access)
