"""What an operator does with the dead-letter queue: list, show, redrive, dismiss.

A **redrive** of an open record: the record is claimed (of two redrives at once, on any
replica, one goes on; the other is told the record is being redriven); its channel reads the
input again (``Rereader``: mail, scan, web submission, SMS) and each ``RawMessage`` goes
through the intake as when it came, under the source key it had, so its event id is the one
it would have had. An input already published (the same mail sent again meanwhile, a letter of
a batch done before) is not published twice: its event id is found in the processed inputs.
Then the quarantine follows (``settle``: the mail to ``Processed``, the scan to
``processed/``) and the record is closed (who, when, which event ids). An input that still
cannot become a complaint leaves the record open with the new reason, the attempt counted (the
intake reports it again on ``intake.dlq.v1`` under the same id: a repeat to consumers). A
redrive that could not be made (Kafka, a store or the mail server unavailable) leaves the record
as it was. A record redriven or dismissed is closed for good: a second redrive publishes
nothing. Records of the notifier or the tracker (Kafka records they could not read) have no
stored input and are only dismissed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from gateway.channels.raw import RawMessage
from gateway.dlq import metrics
from gateway.errors import ClaimNotFound, InputRejected, InvalidReference, StateStoreError
from gateway.intake import Intake
from gateway.reference import parse_reference
from gateway.store.dlq import DlqAction, DlqRecord, DlqStatus, DlqStore
from gateway.store.state import StateStore

log = structlog.get_logger(__name__)

CORRECTABLE_REFERENCE = "documents_unmatched"  # the one reason a corrected reference applies to


class DlqRefusal(Exception):
    """What an operator asked cannot be done; the message says why (a person reads it)."""


class RecordNotFound(DlqRefusal):
    pass


class RecordNotOpen(DlqRefusal):
    """Redriven, dismissed, or being redriven by someone else right now."""

    def __init__(self, record: DlqRecord) -> None:
        if record.status == DlqStatus.OPEN:
            message = f"record {record.id} is being redriven by someone else; try again later"
        else:
            when = record.closed_at.isoformat(timespec="seconds") if record.closed_at else "?"
            message = f"record {record.id} was already {record.status} by {record.closed_by}"
            message += f" at {when}: nothing done"
        super().__init__(message)
        self.record = record


class CannotRedrive(DlqRefusal):
    pass


class Rereader(Protocol):
    """One channel's way of reading a rejected input again."""

    async def messages(self, record: DlqRecord, reference: str | None) -> list[RawMessage]:
        """The input as its channel makes it, to publish; ``InputRejected`` if it still
        cannot become a complaint."""
        ...

    async def settle(self, record: DlqRecord, messages: list[RawMessage]) -> str:
        """Once published: its source leaves the quarantine; what was done (for a person)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RedriveOutcome:
    """``redriven``: every event is in Kafka (``published`` of them now, the others before);
    else the record is still open and ``note`` says why. ``note`` also says where the source
    went."""

    record: DlqRecord
    redriven: bool
    event_ids: tuple[str, ...] = ()
    published: int = 0
    note: str = ""


@dataclass(frozen=True)
class RecordView:
    record: DlqRecord
    actions: list[DlqAction]


class DlqOperations:
    """``readers``: channel name -> how its inputs are read again."""

    def __init__(
        self,
        store: DlqStore,
        intake: Intake,
        state: StateStore,
        readers: Mapping[str, Rereader],
    ) -> None:
        self._store = store
        self._intake = intake
        self._state = state
        self._readers = readers

    async def close(self) -> None:
        for reader in self._readers.values():
            await reader.close()

    async def records(
        self,
        since: datetime | None = None,
        reason_code: str | None = None,
        status: DlqStatus | None = DlqStatus.OPEN,
    ) -> list[DlqRecord]:
        return await self._store.records(since=since, reason_code=reason_code, status=status)

    async def record(self, id_or_prefix: str) -> DlqRecord:
        found = await self._store.get(id_or_prefix)
        if found is None:
            raise RecordNotFound(f"no dead-letter record {id_or_prefix!r}")
        return found

    async def view(self, id_or_prefix: str) -> RecordView:
        record = await self.record(id_or_prefix)
        return RecordView(record, await self._store.actions(record.id))

    async def dismiss(self, id_or_prefix: str, by: str, note: str = "") -> DlqRecord:
        """Close an open record without publishing anything (handled another way)."""
        record = await self.record(id_or_prefix)
        if not await self._store.dismiss(record.id, by, note):
            raise RecordNotOpen(await self.record(record.id))
        log.info("dlq.dismissed", record=record.id, by=by)
        await self._recount()
        return await self.record(record.id)

    async def redrive(
        self, id_or_prefix: str, by: str, reference: str | None = None
    ) -> RedriveOutcome:
        record = await self.record(id_or_prefix)
        reader, reference = self._reader(record, reference), _checked(reference)
        if record.status != DlqStatus.OPEN:
            raise RecordNotOpen(record)
        claimant = f"{by}/{uuid.uuid4()}"
        if not await self._store.claim(record.id, claimant):
            raise RecordNotOpen(await self.record(record.id))
        try:
            messages = await reader.messages(record, reference)
            published, event_ids = await self._publish(messages)
        except InputRejected as exc:
            await self._store.release(record.id, claimant, by, exc.reason_code, exc.reason[:2000])
            log.info("dlq.still_rejected", record=record.id, reason_code=exc.reason_code)
            await self._recount()
            note = f"{exc.reason_code}: {exc.reason}"
            return RedriveOutcome(await self.record(record.id), redriven=False, note=note)
        except ClaimNotFound as exc:
            await self._store.unclaim(record.id, claimant)
            msg = f"its raw copy is no longer in the object store ({exc}): dismiss it"
            raise CannotRedrive(msg) from None
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._store.unclaim(record.id, claimant))
            raise
        note = await self._settle(reader, record, messages)
        if not await self._store.finish(record.id, claimant, by, event_ids, note):
            log.warning("dlq.claim_lost", record=record.id)  # published all the same
        log.info("dlq.redriven", record=record.id, by=by, published=published)
        await self._recount()
        closed = await self.record(record.id)
        return RedriveOutcome(
            closed, redriven=True, event_ids=tuple(event_ids), published=published, note=note
        )

    async def _recount(self) -> None:
        """The metrics follow at once (else at the next refresh: ``metrics.keep_fresh``)."""
        with contextlib.suppress(StateStoreError):
            await metrics.refresh(self._store)

    def _reader(self, record: DlqRecord, reference: str | None) -> Rereader:
        if reference is not None and record.reason_code != CORRECTABLE_REFERENCE:
            raise CannotRedrive(
                f"a corrected reference applies to {CORRECTABLE_REFERENCE} records only,"
                f" not {record.reason_code}"
            )
        reader = self._readers.get(record.channel)
        if reader is None:
            raise CannotRedrive(
                f"records of the {record.channel} channel have no stored input to read again"
                f" ({record.source_uri}): dismiss it once handled"
            )
        return reader

    async def _publish(self, messages: list[RawMessage]) -> tuple[int, list[str]]:
        """Publish each input not published before; (how many now, every event id)."""
        published, event_ids = 0, []
        for raw in messages:
            event_id = await self._state.processed_event(raw.source_key)
            if event_id is None:
                event = await self._intake.submit(raw)
                await self._state.mark_processed(raw.source_key, event.id)
                event_id, published = event.id, published + 1
            event_ids.append(event_id)
        return published, event_ids

    async def _settle(self, reader: Rereader, record: DlqRecord, messages: list[RawMessage]) -> str:
        """The source follows; a failure to move it is said, not raised: Kafka has the events."""
        try:
            return await reader.settle(record, messages)
        except Exception as exc:  # noqa: BLE001 (a person reads it; the redrive stands)
            log.warning("dlq.settle_failed", record=record.id, error=str(exc))
            return f"published, but its source was not moved: {exc}"


def _checked(reference: str | None) -> str | None:
    if reference is None:
        return None
    try:
        return parse_reference(reference)
    except InvalidReference as exc:
        raise CannotRedrive(f"{reference!r} is not a valid reference: {exc}") from None
