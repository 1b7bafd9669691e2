"""Where each complaint stands, folded from the topics by the tracker: ``TrackerStore``.

The tracker (``gateway.tracker``) turns the events of ``complaints.v1`` and ``notifications.v1``
into ``TimelineEntry``s (one per event it cares about, keyed by the event's id) and hands them to
``apply`` with its fold; the store keeps every entry (the complaint's timeline) and one
``TrackedComplaint`` per reference (where it stands now). Two implementations side by side:
``sqlite_tracker.SqliteTrackerStore`` (embedded: ``GATEWAY_DATA_DIR/state/tracker.sqlite``) and
``postgres.tracker.PostgresTrackerStore`` (tables ``tracker_entry`` and ``tracked_complaint`` of
the shared database, migration 0004); ``gateway.store.backends`` chooses.

What every implementation promises:

- **Idempotent.** An entry whose id is kept already changes nothing (a redelivered event, a
  batch read again after a restart, a rebuild overlapping the service); ``apply`` returns how
  many entries were new.
- **Atomic.** The new entries of one ``apply`` and the complaints they change land together or
  not at all; a complaint is folded by one caller at a time (two trackers, or a rebuild beside
  the service, never lose each other's change).
- **Aggregates** for the indicators are counts only (``figures``): no reference, no person.
- **A look-up costs the same found or not** (``complaint``: a stand-in is read when the
  reference is unknown): the status page must not tell a known reference by its time.

Every method raises ``StateStoreError`` when the store cannot be read or written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol


class EntryKind(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    STATUS_CHANGED = "status_changed"
    DOCUMENT_ADDED = "document_added"
    FEEDBACK_RECEIVED = "feedback_received"


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a complaint's life: ``event_id`` is the CloudEvent's id, ``at`` the time the
    event says it happened, ``details`` what the fold needs (no contact, no text of the person)."""

    event_id: str
    reference: str
    kind: EntryKind
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackedComplaint:
    """Where one complaint stands. Fields of an event not seen yet are None (the acknowledgement
    may be read before the complaint: they are different topics). Delays are counted in the
    policy's own days (business or calendar); ``month`` is the month of receipt (``YYYY-MM``) in
    the policy's time zone."""

    reference: str
    channel: str | None = None
    kind: str | None = None
    policy: str | None = None
    received_at: datetime | None = None
    month: str | None = None
    acknowledge_by: date | None = None
    respond_by: date | None = None
    complete: bool = True  # False: flagged needs_review (the request is not complete)
    reachable: bool = True  # False: anonymous or no contact, so nothing can acknowledge it
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None  # the medium of the first acknowledgement delivered
    acknowledge_delay: int | None = None
    acknowledged_in_time: bool | None = None
    status: str = "received"
    status_at: datetime | None = None
    status_note: str | None = None
    status_event_id: str | None = None
    answered_at: datetime | None = None  # first "answered" or "closed"
    answer_delay: int | None = None
    answered_in_time: bool | None = None
    closed_at: datetime | None = None
    documents: int = 0
    last_document_at: datetime | None = None
    rating: int | None = None
    rated_at: datetime | None = None


Fold = Callable[[TrackedComplaint | None, TimelineEntry], TrackedComplaint]

_LONG_AGO = datetime(2000, 1, 3, 12, tzinfo=UTC)
# Every field set: what a look-up of an unknown reference converts, and what the status page
# builds its answer from, before dropping it (the same work as for a complaint found).
STAND_IN = TrackedComplaint(
    reference="PL-0000-0000-0000",
    channel="email",
    kind="complaint",
    policy="",
    received_at=_LONG_AGO,
    month="2000-01",
    acknowledge_by=date(2000, 1, 5),
    respond_by=date(2000, 1, 31),
    acknowledged_at=_LONG_AGO,
    acknowledged_by="email",
    acknowledge_delay=0,
    acknowledged_in_time=True,
    status="in_progress",
    status_at=_LONG_AGO,
    status_note="",
    status_event_id="",
    answered_at=_LONG_AGO,
    answer_delay=0,
    answered_in_time=True,
    closed_at=_LONG_AGO,
    last_document_at=_LONG_AGO,
    rating=3,
    rated_at=_LONG_AGO,
)


class Outcome(StrEnum):
    """Where a complaint stands against one promised date."""

    IN_TIME = "in_time"
    LATE = "late"
    OVERDUE = "overdue"  # not done, and the date has passed
    PENDING = "pending"  # not done, the date not passed yet


@dataclass(frozen=True)
class CountRow:
    """How many complaints of a month and channel stand so."""

    month: str
    channel: str
    complete: bool
    reachable: bool
    acknowledgement: Outcome
    answer: Outcome
    complaints: int


@dataclass(frozen=True)
class DelayRow:
    """How many complaints took ``days`` (the policy's days) to be acknowledged
    (``step`` ``acknowledge``) or answered (``respond``)."""

    month: str
    channel: str
    complete: bool
    step: str
    days: int
    complaints: int


@dataclass(frozen=True)
class RatingRow:
    month: str
    channel: str
    rating: int
    complaints: int


@dataclass(frozen=True)
class PolicyFigures:
    """Counts of one policy's complaints, as they stand on ``today`` (its time zone)."""

    policy: str
    today: date
    counts: list[CountRow]
    delays: list[DelayRow]
    ratings: list[RatingRow]


def figures_queries(policy: str, today: str) -> tuple[str, str, str]:
    """The indicators' SQL, the same on both backends but for their placeholders (``policy``
    and ``today``): counts by month, channel, completeness, reachability and outcome of each
    step; the delays' histogram; the ratings."""
    outcome = (
        "CASE WHEN {done}_in_time IS NOT NULL THEN"
        " (CASE WHEN {done}_in_time THEN 'in_time' ELSE 'late' END)"
        f" WHEN {{due}}_by < {today} THEN 'overdue' ELSE 'pending' END"
    )
    counts = (
        "SELECT month, channel, complete, reachable, "  # noqa: S608 (constants only)
        + outcome.format(done="acknowledged", due="acknowledge")
        + ", "
        + outcome.format(done="answered", due="respond")
        + f", count(*) FROM tracked_complaint WHERE policy = {policy}"
        " GROUP BY 1, 2, 3, 4, 5, 6"
    )
    delays = (
        "SELECT month, channel, complete, 'acknowledge', acknowledge_delay, count(*)"  # noqa: S608
        f" FROM tracked_complaint WHERE policy = {policy} AND acknowledge_delay IS NOT NULL"
        " GROUP BY 1, 2, 3, 5"
        " UNION ALL SELECT month, channel, complete, 'respond', answer_delay, count(*)"
        f" FROM tracked_complaint WHERE policy = {policy} AND answer_delay IS NOT NULL"
        " GROUP BY 1, 2, 3, 5"
    )
    ratings = (
        "SELECT month, channel, rating, count(*) FROM tracked_complaint"  # noqa: S608
        f" WHERE policy = {policy} AND rating IS NOT NULL GROUP BY 1, 2, 3"
    )
    return counts, delays, ratings


@dataclass(frozen=True)
class Overdue:
    """An open complaint past its respond-by date: the reference only, for the office."""

    reference: str
    policy: str
    channel: str
    respond_by: date
    status: str


class TrackerStore(Protocol):
    async def apply(self, entries: Sequence[TimelineEntry], fold: Fold) -> int:
        """Keep the entries not kept yet and fold each into its complaint, in order; how many
        were new."""
        ...

    async def complaint(self, reference: str) -> TrackedComplaint | None: ...

    async def timeline(self, reference: str) -> list[TimelineEntry]:
        """A complaint's entries, oldest first (by ``at``, then id)."""
        ...

    async def policies(self) -> list[str]:
        """The policies of the complaints received."""
        ...

    async def figures(self, policy: str, today: date) -> PolicyFigures: ...

    async def overdue(self, today: dict[str, date], limit: int = 10_000) -> list[Overdue]:
        """Open complaints whose respond-by date is before ``today`` of their policy, oldest
        due first."""
        ...

    async def clear(self) -> None:
        """Forget every entry and complaint (before a rebuild from the topics)."""
        ...

    @property
    def closed(self) -> bool:
        """Closed with its backend: whoever refreshes from it (metrics) stops."""
        ...

    async def close(self) -> None: ...
