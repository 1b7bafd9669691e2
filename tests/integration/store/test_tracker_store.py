"""What every ``TrackerStore`` promises (``gateway.store.tracker``), on SQLite and PostgreSQL, with
two openings of the same state standing for two trackers (or the service and a rebuild)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from gateway.events.envelope import CloudEvent
from gateway.events.notification import Medium
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.store.backends import StateBackend
from gateway.store.tracker import (
    CountRow,
    DelayRow,
    EntryKind,
    Outcome,
    RatingRow,
    TimelineEntry,
    TrackedComplaint,
)
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.integration.store.conftest import Opener
from tests.support.tracker import (
    acknowledged,
    document,
    feedback,
    local,
    received,
    reference,
    status,
)

pytestmark = pytest.mark.integration

FOLD = ComplaintFold(BUILTIN_POLICIES)


def entries(*events: CloudEvent[Any]) -> list[TimelineEntry]:
    found = [entry_of(event) for event in events]
    assert all(found)
    return [entry for entry in found if entry is not None]


def life(name: str) -> list[TimelineEntry]:
    """A complaint received before the Saint-Jean, acknowledged on its last allowed day,
    answered one business day late, rated."""
    return entries(
        received(name, local("ramq", 2026, 6, 23, 10)),
        acknowledged(name, local("ramq", 2026, 6, 26, 15), Medium.SMS),
        status(name, "in_progress", local("ramq", 2026, 6, 29, 9), "Dossier attribué à Luc."),
        document(name, local("ramq", 2026, 7, 2, 9)),
        status(name, "answered", local("ramq", 2026, 7, 24, 11), "Réponse envoyée par la poste."),
        feedback(name, 4, local("ramq", 2026, 7, 25, 9)),
    )


def expected(name: str) -> TrackedComplaint:
    complaint = None
    for entry in life(name):
        complaint = FOLD(complaint, entry)
    assert complaint is not None
    return complaint


async def test_entries_are_kept_once_and_a_complaint_reads_back_exactly_on_any_replica(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    assert await one.tracker.apply(life("a"), FOLD) == 6
    assert await other.tracker.apply(life("a"), FOLD) == 0  # redelivered: nothing changes
    assert await other.tracker.apply(life("a")[2:4] + life("a")[2:4], FOLD) == 0
    found = await other.tracker.complaint(reference("a"))
    assert found == expected("a")
    assert found is not None
    assert (found.answered_in_time, found.answer_delay, found.rating) == (False, 21, 4)
    assert found.acknowledged_by == "sms"
    assert await one.tracker.complaint(reference("nobody")) is None


async def test_a_batch_holding_the_same_entry_twice_folds_it_once(backend: StateBackend) -> None:
    twice = life("b")[:4] + life("b")[3:4]
    assert await backend.tracker.apply(twice, FOLD) == 4
    found = await backend.tracker.complaint(reference("b"))
    assert found is not None
    assert found.documents == 1


async def test_the_timeline_is_in_time_order_whatever_the_order_applied(
    backend: StateBackend,
) -> None:
    shuffled = list(reversed(life("c")))
    for entry in shuffled:
        await backend.tracker.apply([entry], FOLD)
    timeline = await backend.tracker.timeline(reference("c"))
    assert [entry.kind for entry in timeline] == [
        EntryKind.RECEIVED,
        EntryKind.ACKNOWLEDGED,
        EntryKind.STATUS_CHANGED,
        EntryKind.DOCUMENT_ADDED,
        EntryKind.STATUS_CHANGED,
        EntryKind.FEEDBACK_RECEIVED,
    ]
    assert timeline == sorted(life("c"), key=lambda entry: entry.at)
    assert await backend.tracker.complaint(reference("c")) == expected("c")


async def test_two_trackers_folding_one_complaint_at_once_lose_nothing(
    open_backend: Opener,
) -> None:
    """A rebuild beside the service, or two trackers after a rebalance: every entry counts."""
    one, other = await open_backend("a"), await open_backend("b")
    names = [f"d{number}" for number in range(20)]
    mine = [entry for name in names for entry in life(name)[0::2]]
    theirs = [entry for name in names for entry in life(name)[1::2]]
    await asyncio.gather(
        *(one.tracker.apply(mine[start : start + 7], FOLD) for start in range(0, 60, 7)),
        *(other.tracker.apply(theirs[start : start + 5], FOLD) for start in range(0, 60, 5)),
    )
    for name in names:
        assert await one.tracker.complaint(reference(name)) == expected(name), name


async def test_figures_count_complaints_by_month_channel_and_outcome(backend: StateBackend) -> None:
    await backend.tracker.apply(life("e"), FOLD)
    await backend.tracker.apply(
        entries(
            received("f", local("ramq", 2026, 6, 25, 10), flags=("needs_review",)),
            received("g", local("ramq", 2026, 7, 2, 10), email=None, anonymous=True, name=None),
            received("h", local("fr-marianne", 2026, 5, 13, 10), policy="fr-marianne"),
            acknowledged("h", local("fr-marianne", 2026, 5, 18, 10)),
        ),
        FOLD,
    )
    assert await backend.tracker.policies() == ["fr-marianne", "ramq"]
    figures = await backend.tracker.figures("ramq", date(2026, 7, 7))
    assert sorted(figures.counts, key=lambda row: row.month + str(row.complete)) == [
        CountRow("2026-06", "email", False, True, Outcome.OVERDUE, Outcome.PENDING, 1),
        CountRow("2026-06", "email", True, True, Outcome.IN_TIME, Outcome.LATE, 1),
        CountRow("2026-07", "email", True, False, Outcome.OVERDUE, Outcome.PENDING, 1),
    ]
    assert sorted(figures.delays, key=lambda row: row.step) == [
        DelayRow("2026-06", "email", True, "acknowledge", 2, 1),
        DelayRow("2026-06", "email", True, "respond", 21, 1),
    ]
    assert figures.ratings == [RatingRow("2026-06", "email", 4, 1)]
    french = await backend.tracker.figures("fr-marianne", date(2026, 5, 19))
    assert [(row.acknowledgement, row.answer) for row in french.counts] == [
        (Outcome.IN_TIME, Outcome.PENDING)
    ]


async def test_overdue_names_open_complaints_past_their_respond_by_date_oldest_first(
    backend: StateBackend,
) -> None:
    await backend.tracker.apply(life("i"), FOLD)  # answered
    await backend.tracker.apply(
        entries(
            received("j", local("ramq", 2026, 6, 25, 10)),  # due July 24
            received("k", local("ramq", 2026, 6, 18, 10)),  # due July 20
            received("l", local("ramq", 2026, 7, 20, 10)),  # not due yet
            received("m", local("fr-marianne", 2026, 6, 1, 10), policy="fr-marianne"),
            status("m", "in_progress", local("fr-marianne", 2026, 6, 2, 10)),
        ),
        FOLD,
    )
    overdue = await backend.tracker.overdue(
        {"ramq": date(2026, 7, 28), "fr-marianne": date(2026, 7, 28)}
    )
    assert [(item.reference, item.respond_by) for item in overdue] == [
        (reference("m"), date(2026, 6, 22)),
        (reference("k"), date(2026, 7, 20)),
        (reference("j"), date(2026, 7, 24)),
    ]
    assert overdue[0].status == "in_progress"
    assert await backend.tracker.overdue({"ramq": date(2026, 7, 28)}, limit=1) == [overdue[1]]


async def test_clear_forgets_everything(backend: StateBackend) -> None:
    await backend.tracker.apply(life("n"), FOLD)
    await backend.tracker.clear()
    assert await backend.tracker.complaint(reference("n")) is None
    assert await backend.tracker.timeline(reference("n")) == []
    assert await backend.tracker.policies() == []
    assert await backend.tracker.apply(life("n"), FOLD) == 6  # new again after a clear
