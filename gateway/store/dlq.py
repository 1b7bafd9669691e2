"""The dead-letter queue as a work queue: ``DlqStore``.

Every input reported on ``intake.dlq.v1`` through the intake is also kept here as a record,
keyed by the ``intake.rejected`` event's id, for the office to see, re-drive or dismiss
(``gateway.dlq``). Two implementations side by side: ``sqlite_dlq.SqliteDlqStore`` (embedded:
``GATEWAY_DATA_DIR/state/dlq.sqlite``) and ``postgres.dlq.PostgresDlqStore`` (tables
``dlq_record`` and ``dlq_action`` of the shared database); ``gateway.store.backends`` chooses.

What every implementation promises:

- **Idempotent insert.** ``add`` keeps the first record of an id: a rejection reported again
  (the same input redelivered, a failed re-drive reporting under the same id) changes nothing.
- **Look-up** by id, or by a unique prefix of it (what an operator types); a prefix that names
  several records raises ``AmbiguousId``.
- **One re-drive at a time.** ``claim`` takes an open record for one attempt (a lease of
  ``lease_s``, so an attempt whose process died is taken over later); of two claims at once,
  on any replica, exactly one wins. The claimant then ``finish``es it (redriven: the event ids
  published) or ``release``s it (still rejected: it stays open with the new reason, and the
  attempt is counted), or ``unclaim``s it (the attempt could not be made). A record redriven or
  dismissed is never open again.
- **Dismiss** closes an open, unclaimed record without publishing anything.
- Every attempt and every closing is kept as an action (who, when, what came of it).
- ``open_summary``: open records by reason code, with the oldest one's time (metrics).

Every method raises ``StateStoreError`` when the store cannot be read or written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

LEASE_S = 600.0  # a re-drive still under way after this was abandoned (its process died)
LIST_LIMIT = 500  # records a listing returns at most, newest first
_ID_OR_PREFIX = re.compile(r"^[0-9a-f][0-9a-f-]{3,35}$")  # a UUID, or its first 4+ characters


class DlqStatus(StrEnum):
    OPEN = "open"
    REDRIVEN = "redriven"
    DISMISSED = "dismissed"


class AmbiguousId(LookupError):
    """A prefix that starts the ids of several records."""


@dataclass(frozen=True)
class DlqRecord:
    """One rejected input. ``id``: the ``intake.rejected`` event's id; ``source_key``: the
    input's key (its event ids derive from it); ``recorded_at``: when it was rejected;
    ``received_at``: when the input came. ``reason_code``/``reason`` are the latest: those of
    the last failed re-drive, if any. ``closed_by``/``closed_at``: who redrove or dismissed it."""

    id: str
    channel: str
    reason_code: str
    reason: str
    source_key: str
    source: str
    source_id: str | None
    source_uri: str | None
    received_at: datetime
    recorded_at: datetime
    details: dict[str, str] = field(default_factory=dict)
    status: DlqStatus = DlqStatus.OPEN
    attempts: int = 0
    closed_by: str | None = None
    closed_at: datetime | None = None
    event_ids: tuple[str, ...] = ()  # what the re-drive published (or found published)


@dataclass(frozen=True)
class DlqAction:
    """Something an operator did to a record: ``redrive`` (``outcome``: ``redriven`` or
    ``still_rejected``, with the reason) or ``dismiss``."""

    record_id: str
    action: str
    by: str
    at: datetime
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class ReasonSummary:
    reason_code: str
    open_records: int
    oldest_recorded_at: datetime


def id_prefix(text: str) -> str | None:
    """An id or id prefix as typed (case and spaces aside), or None if it cannot start one."""
    cleaned = text.strip().lower()
    return cleaned if _ID_OR_PREFIX.match(cleaned) else None


class DlqStore(Protocol):
    async def add(self, record: DlqRecord) -> bool:
        """Keep a new record (open); False when one of that id exists (nothing changes)."""
        ...

    async def get(self, id_or_prefix: str) -> DlqRecord | None:
        """The record of that id, or the one whose id starts so (``AmbiguousId`` if several)."""
        ...

    async def records(
        self,
        *,
        since: datetime | None = None,
        reason_code: str | None = None,
        status: DlqStatus | None = DlqStatus.OPEN,
        limit: int = LIST_LIMIT,
    ) -> list[DlqRecord]:
        """Records rejected at or after ``since``, newest first (``status`` None: any)."""
        ...

    async def actions(self, record_id: str) -> list[DlqAction]:
        """What was done to a record, oldest first."""
        ...

    async def claim(self, record_id: str, claimant: str, lease_s: float = LEASE_S) -> bool:
        """Take an open record for one re-drive attempt; False if it is not open, or another
        attempt holds it. ``claimant``: unique to the attempt."""
        ...

    async def finish(
        self, record_id: str, claimant: str, by: str, event_ids: list[str], detail: str = ""
    ) -> bool:
        """The claimed record was redriven: closed (by ``by``, now). False if the claim was
        lost (its lease ran out and another attempt took it)."""
        ...

    async def release(
        self, record_id: str, claimant: str, by: str, reason_code: str, reason: str
    ) -> bool:
        """The attempt failed: the record stays open with this reason, its attempts counted."""
        ...

    async def unclaim(self, record_id: str, claimant: str) -> None:
        """The attempt could not be made (Kafka or a store unavailable): the record is free
        again, unchanged, no attempt counted."""
        ...

    async def dismiss(self, record_id: str, by: str, note: str = "") -> bool:
        """Close an open record no attempt holds, publishing nothing; False otherwise."""
        ...

    async def open_summary(self) -> list[ReasonSummary]:
        """Open records by reason code, with the time the oldest of each was rejected."""
        ...

    @property
    def closed(self) -> bool:
        """Closed with its backend: whoever refreshes from it (metrics) stops."""
        ...

    async def close(self) -> None: ...
