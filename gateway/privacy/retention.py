"""Retention: what is past its time is deleted (``intake-gateway retention run``, and once a day
inside ``run``).

Each kind of data has its time (``GATEWAY_RETENTION_*``, in days), counted from the complaint's
closing when the tracker saw it closed, else from its receipt (``gateway.store.complaint_data``).
What lies under a reference on legal hold stays. In order:

1. **objects**: the catalog rows of raw inputs and attachments past due go; an object itself is
   deleted (its data keys destroyed first) only once no row names it any more, so an
   attachment two complaints sent is kept while the other is in retention, and a raw copy a
   dead-letter record still holds stays with it;
2. **dead-letter records** recorded longer ago than their time, with their raw copies (the same
   rule);
3. **state rows** of complaints past due: the notifier's contacts and ledger, the keyed hashes
   of their contacts, the duplicate index;
4. **tracker** timelines and standings;
5. **reads on record** (the catalog's, the operators') past the audit time, and processed
   inputs past the state time.

A dry run counts what would go and deletes nothing. Several replicas running it at once delete
the same things once (each deletion is idempotent).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from gateway.errors import GatewayError
from gateway.settings import RetentionSettings
from gateway.store.claims import ClaimStore
from gateway.store.complaint_data import ComplaintData
from gateway.store.privacy import PrivacyRecords

log = structlog.get_logger(__name__)

DAY_S = 86_400.0
FIRST_RUN_S = 600.0  # after start: the services are up, the start-up is not slowed
ORDER = (
    "objects",
    "objects_kept",
    "catalog_rows",
    "dlq_records",
    "complaints_state",
    "contacts",
    "notifications",
    "contact_hashes",
    "duplicates",
    "complaints_tracker",
    "tracker_rows",
    "object_reads",
    "access_records",
    "processed_inputs",
)


@dataclass
class RetentionReport:
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        said = []
        for name in ORDER:
            if name in self.counts or not self.dry_run:
                kept = name == "objects_kept"
                said.append(f"{'kept' if kept else verb}\t{name}\t{self.counts[name]}")
        return said


@dataclass
class Retention:
    settings: RetentionSettings
    data: ComplaintData
    privacy: PrivacyRecords
    claims: ClaimStore

    async def run(self, now: datetime | None = None, dry_run: bool = False) -> RetentionReport:
        now = now or datetime.now(UTC)
        report = RetentionReport(dry_run)
        days = self.settings
        await self._objects(now - timedelta(days=days.raw_days), now, report)
        await self._dlq(now - timedelta(days=days.dlq_days), report)
        await self._state(now - timedelta(days=days.state_days), report)
        await self._tracker(now - timedelta(days=days.tracker_days), report)
        if not dry_run:
            audit, state = (
                now - timedelta(days=days.audit_days),
                now - timedelta(days=days.state_days),
            )
            report.counts.update(await self.data.prune(audit, state))
            report.counts["access_records"] += await self.privacy.prune_accesses(audit)
        log.info("retention.done", dry_run=dry_run, **report.counts)
        return report

    async def _objects(self, raw: datetime, now: datetime, report: RetentionReport) -> None:
        attachments = now - timedelta(days=self.settings.attachments_days)
        for due in await self.data.due_objects({"raw": raw, "attachment": attachments}):
            goes = due.last and not await self.data.dlq_needs(due.sha256)
            report.counts["catalog_rows"] += len(due.references)
            report.counts["objects" if goes else "objects_kept"] += 1
            if report.dry_run:
                continue
            await self.data.forget_rows(due.sha256, due.references)
            if goes:
                await self.claims.delete(due.sha256)

    async def _dlq(self, before: datetime, report: RetentionReport) -> None:
        copies = await self.data.due_dlq(before)
        ids = [copy.record_id for copy in copies]
        report.counts["dlq_records"] += len(ids)
        if ids and not report.dry_run:
            await self.data.forget_dlq(ids)
        for sha256 in sorted({copy.sha256 for copy in copies if copy.sha256}):
            if await self.data.holders(sha256) or await self.data.dlq_needs(sha256, ids):
                continue
            report.counts["objects"] += 1
            if not report.dry_run:
                await self.claims.delete(sha256)

    async def _state(self, before: datetime, report: RetentionReport) -> None:
        for reference in await self.data.due_references("state", before):
            report.counts["complaints_state"] += 1
            if not report.dry_run:
                report.counts.update(await self.data.forget_state(reference))

    async def _tracker(self, before: datetime, report: RetentionReport) -> None:
        for reference in await self.data.due_references("tracker", before):
            report.counts["complaints_tracker"] += 1
            if not report.dry_run:
                report.counts["tracker_rows"] += await self.data.forget_tracker(reference)


class RetentionService:
    """Retention once a day inside ``run`` (``GATEWAY_RETENTION_DAILY``): first some minutes after
    start, then every 24 hours give or take a few minutes (replicas drift apart); a run that
    fails is logged and tried again the next day."""

    name = "retention"

    def __init__(self, retention: Retention, first_s: float = FIRST_RUN_S) -> None:
        self._retention = retention
        self._first_s = first_s

    async def run(self) -> None:
        wait = self._first_s
        while True:
            await asyncio.sleep(wait)
            try:
                await self._retention.run()
            except GatewayError as exc:
                log.warning("retention.failed", error=str(exc))  # tried again tomorrow
            wait = DAY_S + random.uniform(-600, 600)  # noqa: S311 (a spread, not a secret)
