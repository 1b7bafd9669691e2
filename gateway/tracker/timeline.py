"""From events to a complaint's timeline, and the fold that says where it stands: pure functions.

``entry_of`` keeps, of each event the tracker reads, what the timeline needs and nothing
personal (no contact, no text of the person; the case system's note for the person is kept, as
the status page shows it). ``ComplaintFold`` folds an entry into the complaint's state.

The fold gives the same state whatever order the entries come in (the two topics are read
independently, and a rebuild reads them again): the first acknowledgement delivered, the first
answer and the first rating are the earliest by time; the current status is the latest change
by its own time (then by event id); counts add up. Delays and "in time" are computed again
whenever an entry changes what they depend on.

Delays are counted in the policy's own days from the day of receipt, both days told in the
policy's time zone: business days (weekends and the policy's public holidays left out) or
calendar days. "In time" compares the day the thing was done with the date promised in the
complaint's event (``due``), which is what the person was told.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gateway.events.complaint import ComplaintReceived, DocumentAdded, Flag, StatusChanged
from gateway.events.envelope import CloudEvent
from gateway.events.feedback import FeedbackReceived
from gateway.events.notification import NotificationSent, Purpose
from gateway.normalizers.due import DayCount, DuePolicy
from gateway.store.tracker import EntryKind, TimelineEntry, TrackedComplaint

FINAL_STATUSES = frozenset({"answered", "closed"})
_NOT_DOCUMENTS = frozenset({Flag.BOUNCE, Flag.AUTO_REPLY})  # our own mail coming back


def entry_of(event: CloudEvent[Any]) -> TimelineEntry | None:
    """The timeline's entry of an event, or None when the timeline does not record it."""
    data = event.data
    if isinstance(data, ComplaintReceived):
        return _received(event.id, data)
    if isinstance(data, NotificationSent) and data.purpose == Purpose.ACKNOWLEDGEMENT:
        medium: dict[str, Any] = {"medium": str(data.medium)}
        return TimelineEntry(event.id, data.reference, EntryKind.ACKNOWLEDGED, data.sent_at, medium)
    if isinstance(data, StatusChanged):
        details: dict[str, Any] = {"status": str(data.status), "note": data.message}
        return TimelineEntry(
            event.id, data.reference, EntryKind.STATUS_CHANGED, data.changed_at, details
        )
    if isinstance(data, DocumentAdded) and not _NOT_DOCUMENTS.intersection(data.flags):
        return TimelineEntry(event.id, data.reference, EntryKind.DOCUMENT_ADDED, data.received_at)
    if isinstance(data, FeedbackReceived):
        return TimelineEntry(
            event.id,
            data.reference,
            EntryKind.FEEDBACK_RECEIVED,
            data.given_at,
            {"rating": data.rating},
        )
    return None


def _received(event_id: str, data: ComplaintReceived) -> TimelineEntry:
    person = data.complainant
    reachable = not person.anonymous and bool(person.email or person.phone or person.postal_address)
    details = {
        "channel": str(data.channel),
        "kind": str(data.kind),
        "policy": data.due.policy if data.due else None,
        "acknowledge_by": data.due.acknowledge_by.isoformat() if data.due else None,
        "respond_by": data.due.respond_by.isoformat() if data.due else None,
        "complete": Flag.NEEDS_REVIEW not in data.flags,
        "reachable": reachable,
    }
    return TimelineEntry(event_id, data.reference, EntryKind.RECEIVED, data.received_at, details)


State = dict[str, Any]  # a complaint's fields while an entry is folded into them
_DELAYS_DEPEND_ON = frozenset(
    {EntryKind.RECEIVED, EntryKind.ACKNOWLEDGED, EntryKind.STATUS_CHANGED}
)


class ComplaintFold:
    """Folds an entry into a complaint's state, counting delays with ``policies`` (a policy the
    installation no longer knows counts calendar days in UTC). Each entry changes a copy of the
    complaint's fields, made into a new ``TrackedComplaint`` once (the tracker folds thousands
    of entries a second: one object per entry, not one per field changed)."""

    def __init__(self, policies: Mapping[str, DuePolicy]) -> None:
        self._policies = dict(policies)

    def __call__(self, current: TrackedComplaint | None, entry: TimelineEntry) -> TrackedComplaint:
        state: State = vars(current).copy() if current else {"reference": entry.reference}
        _FOLDS[entry.kind](state, entry)
        if entry.kind in _DELAYS_DEPEND_ON and state.get("received_at") is not None:
            self._count_delays(state)
        return TrackedComplaint(**state)

    def day(self, policy: str | None, moment: datetime) -> date:
        """The day of ``moment`` in the policy's time zone."""
        return moment.astimezone(_zone(self._policies.get(policy or ""))).date()

    def _count_delays(self, state: State) -> None:
        name = state.get("policy")
        policy = self._policies.get(name or "")
        received = self.day(name, state["received_at"])
        acknowledged = answered = None
        if state.get("acknowledged_at") is not None:
            acknowledged = self.day(name, state["acknowledged_at"])
        if state.get("answered_at") is not None:
            answered = self.day(name, state["answered_at"])
        state["month"] = f"{received.year:04d}-{received.month:02d}"
        state["acknowledge_delay"] = _delay(policy, "acknowledge", received, acknowledged)
        state["acknowledged_in_time"] = _in_time(acknowledged, state.get("acknowledge_by"))
        state["answer_delay"] = _delay(policy, "respond", received, answered)
        state["answered_in_time"] = _in_time(answered, state.get("respond_by"))


def _fold_received(state: State, entry: TimelineEntry) -> None:
    details = entry.details
    state.update(
        channel=details.get("channel"),
        kind=details.get("kind"),
        policy=details.get("policy"),
        received_at=entry.at,
        acknowledge_by=_date(details.get("acknowledge_by")),
        respond_by=_date(details.get("respond_by")),
        complete=bool(details.get("complete", True)),
        reachable=bool(details.get("reachable", True)),
    )


def _fold_acknowledged(state: State, entry: TimelineEntry) -> None:
    earlier = state.get("acknowledged_at")
    if earlier is None or entry.at < earlier:
        state.update(acknowledged_at=entry.at, acknowledged_by=entry.details.get("medium"))


def _fold_status(state: State, entry: TimelineEntry) -> None:
    status = str(entry.details.get("status", ""))
    if status in FINAL_STATUSES:
        state["answered_at"] = _earliest(state.get("answered_at"), entry.at)
    if status == "closed":
        state["closed_at"] = _earliest(state.get("closed_at"), entry.at)
    latest = state.get("status_at")
    if latest is not None and (latest, state.get("status_event_id") or "") >= (
        entry.at,
        entry.event_id,
    ):
        return
    state.update(
        status=status,
        status_at=entry.at,
        status_note=entry.details.get("note"),
        status_event_id=entry.event_id,
    )


def _fold_document(state: State, entry: TimelineEntry) -> None:
    last = state.get("last_document_at")
    state["documents"] = state.get("documents", 0) + 1
    state["last_document_at"] = entry.at if last is None or entry.at > last else last


def _fold_feedback(state: State, entry: TimelineEntry) -> None:
    earlier = state.get("rated_at")
    if earlier is None or entry.at < earlier:
        state.update(rating=int(entry.details["rating"]), rated_at=entry.at)


_FOLDS: dict[EntryKind, Callable[[State, TimelineEntry], None]] = {
    EntryKind.RECEIVED: _fold_received,
    EntryKind.ACKNOWLEDGED: _fold_acknowledged,
    EntryKind.STATUS_CHANGED: _fold_status,
    EntryKind.DOCUMENT_ADDED: _fold_document,
    EntryKind.FEEDBACK_RECEIVED: _fold_feedback,
}


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _in_time(done: date | None, due: date | None) -> bool | None:
    if done is None or due is None:
        return None
    return done <= due


def _delay(policy: DuePolicy | None, step: str, start: date, end: date | None) -> int | None:
    if end is None:
        return None
    if policy is None:
        return max(0, (end - start).days)
    period = policy.acknowledge if step == "acknowledge" else policy.respond
    if period.count is DayCount.CALENDAR:
        return max(0, (end - start).days)
    return business_days_between(policy, start, end)


@lru_cache(maxsize=65_536)
def business_days_between(policy: DuePolicy, start: date, end: date) -> int:
    """Business days of the policy after ``start`` up to ``end`` included (0 when ``end`` is
    not after ``start``): a reply on the second business day after receipt took 2."""
    days, day = 0, start
    while day < end:
        day += timedelta(days=1)
        if policy.is_business_day(day):
            days += 1
    return days


@lru_cache(maxsize=64)
def _zone_of(name: str) -> tzinfo:
    return ZoneInfo(name)


def _zone(policy: DuePolicy | None) -> tzinfo:
    return _zone_of(policy.timezone) if policy is not None else UTC
