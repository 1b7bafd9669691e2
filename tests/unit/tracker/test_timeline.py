"""The fold: events to entries, entries to where a complaint stands, delays in the policy's days."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest

from gateway.events.complaint import ContactKind, ContactVerified, VerificationMethod
from gateway.events.envelope import CloudEvent, make_event
from gateway.events.notification import Medium, Purpose
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.store.tracker import EntryKind, TrackedComplaint
from gateway.tracker.timeline import ComplaintFold, business_days_between, entry_of
from tests.support.tracker import (
    acknowledged,
    document,
    feedback,
    local,
    received,
    reference,
    status,
)

FOLD = ComplaintFold(BUILTIN_POLICIES)


def folded(*events: CloudEvent[Any]) -> TrackedComplaint:
    complaint = None
    for event in events:
        entry = entry_of(event)
        assert entry is not None, event.type
        complaint = FOLD(complaint, entry)
    assert complaint is not None
    return complaint


def test_given_a_complaint_received_then_its_entry_keeps_the_promise_and_nothing_personal() -> None:
    event = received("a", local("ramq", 2026, 6, 23, 10), flags=("needs_review",))
    entry = entry_of(event)
    assert entry is not None
    assert entry.kind == EntryKind.RECEIVED
    assert entry.event_id == event.id
    assert entry.details == {
        "channel": "email",
        "kind": "complaint",
        "policy": "ramq",
        "acknowledge_by": "2026-06-26",
        "respond_by": "2026-07-23",
        "complete": False,
        "reachable": True,
    }
    assert "marie" not in repr(entry).lower()


def test_an_anonymous_complaint_is_not_reachable_and_a_bounce_is_not_a_document() -> None:
    anonymous = entry_of(
        received("b", local("ramq", 2026, 6, 23, 10), name=None, email=None, anonymous=True)
    )
    assert anonymous is not None
    assert anonymous.details["reachable"] is False
    assert entry_of(document("b", local("ramq", 2026, 6, 24, 10), flags=("bounce",))) is None
    assert entry_of(document("b", local("ramq", 2026, 6, 24, 10))) is not None


@pytest.mark.parametrize(
    ("acknowledged_on", "delay", "in_time"),
    [
        ((2026, 6, 23, 16), 0, True),  # the day of receipt
        ((2026, 6, 25, 9), 1, True),  # June 24 (Saint-Jean-Baptiste) is not a business day
        ((2026, 6, 26, 23, 59), 2, True),  # the last allowed day, Montréal time
        ((2026, 6, 27, 11), 2, False),  # Saturday: no business day passed, but past the date
        ((2026, 6, 29, 8), 3, False),  # one business day late
    ],
)
def test_given_ramq_around_the_saint_jean_then_the_acknowledgement_delay_is_in_business_days(
    acknowledged_on: tuple[int, ...], delay: int, in_time: bool
) -> None:
    complaint = folded(
        received("c", local("ramq", 2026, 6, 23, 10)),
        acknowledged("c", local("ramq", *acknowledged_on)),
    )
    assert complaint.acknowledge_by == date(2026, 6, 26)
    assert complaint.acknowledge_delay == delay
    assert complaint.acknowledged_in_time is in_time
    assert complaint.month == "2026-06"


def test_a_day_is_told_in_the_policys_time_zone() -> None:
    """21:30 in Montréal on June 30 is July 1 in UTC: still a June complaint, acknowledged on
    the day after receipt (July 1, Canada Day, is no business day: delay 0)."""
    complaint = folded(
        received("d", local("ramq", 2026, 6, 30, 21, 30)),
        acknowledged("d", local("ramq", 2026, 7, 1, 9)),
    )
    assert complaint.month == "2026-06"
    assert complaint.acknowledge_delay == 0
    assert complaint.acknowledged_in_time is True


def test_given_fr_marianne_around_the_ascension_then_one_day_late_is_late() -> None:
    complaint = folded(
        received("e", local("fr-marianne", 2026, 5, 13, 10), policy="fr-marianne"),
        acknowledged("e", local("fr-marianne", 2026, 5, 19, 9)),
        status("e", "answered", local("fr-marianne", 2026, 6, 5, 17), "Votre carte est partie."),
    )
    assert (complaint.acknowledge_by, complaint.respond_by) == (date(2026, 5, 18), date(2026, 6, 5))
    assert (complaint.acknowledge_delay, complaint.acknowledged_in_time) == (3, False)
    assert (complaint.answer_delay, complaint.answered_in_time) == (15, True)
    assert complaint.status == "answered"
    assert complaint.status_note == "Votre carte est partie."


def test_given_inami_then_delays_are_calendar_days() -> None:
    complaint = folded(
        received("f", local("inami", 2026, 12, 23, 10), policy="inami"),
        acknowledged("f", local("inami", 2027, 1, 3, 10)),
    )
    assert complaint.acknowledge_by == date(2027, 1, 2)
    assert (complaint.acknowledge_delay, complaint.acknowledged_in_time) == (11, False)


def test_the_first_acknowledgement_delivered_counts_with_its_medium() -> None:
    complaint = folded(
        received("g", local("ramq", 2026, 6, 18, 10)),
        acknowledged("g", local("ramq", 2026, 6, 23, 9), Medium.LETTER),
        acknowledged("g", local("ramq", 2026, 6, 19, 9), Medium.SMS),
    )
    assert complaint.acknowledged_by == "sms"
    assert complaint.acknowledge_delay == 1


def test_the_current_status_is_the_latest_change_and_the_answer_the_first_final_one() -> None:
    complaint = folded(
        received("h", local("ramq", 2026, 6, 18, 10)),
        status("h", "closed", local("ramq", 2026, 7, 30, 9)),
        status("h", "in_progress", local("ramq", 2026, 6, 22, 9), "Dossier attribué."),
        status("h", "answered", local("ramq", 2026, 7, 20, 16)),
        document("h", local("ramq", 2026, 6, 25, 9)),
        document("h", local("ramq", 2026, 6, 26, 9)),
        feedback("h", 2, local("ramq", 2026, 7, 31, 9)),
    )
    assert complaint.status == "closed"
    assert complaint.status_note is None
    assert complaint.answered_at == local("ramq", 2026, 7, 20, 16)
    assert complaint.closed_at == local("ramq", 2026, 7, 30, 9)
    assert (complaint.respond_by, complaint.answered_in_time) == (date(2026, 7, 20), True)
    assert complaint.answer_delay == 20
    assert complaint.documents == 2
    assert complaint.rating == 2


def test_given_any_order_of_the_entries_then_the_fold_gives_the_same_complaint() -> None:
    """The topics are read independently and a rebuild reads them again: order must not
    matter."""
    events = [
        received("i", local("ramq", 2026, 12, 23, 10)),
        acknowledged("i", local("ramq", 2026, 12, 28, 9)),
        status("i", "in_progress", local("ramq", 2027, 1, 4, 9), "Nous regardons."),
        status("i", "answered", local("ramq", 2027, 1, 25, 9)),
        document("i", local("ramq", 2026, 12, 30, 9)),
        feedback("i", 5, local("ramq", 2027, 1, 26, 9)),
    ]
    entries = [entry for entry in map(entry_of, events) if entry is not None]
    outcomes = set()
    for order in itertools.permutations(entries):
        complaint = None
        for entry in order:
            complaint = FOLD(complaint, entry)
        outcomes.add(complaint)
    (only,) = outcomes
    assert only.acknowledged_in_time is True  # Dec 25 is a holiday: Dec 28 is the 2nd day
    assert (only.answered_in_time, only.answer_delay) == (False, 21)  # due Jan 22, 2027
    assert only.status == "answered"


def test_events_the_timeline_does_not_record_give_no_entry() -> None:
    status_update = acknowledged("j", local("ramq", 2026, 6, 18, 10)).data.model_copy(
        update={"purpose": Purpose.STATUS_UPDATE}
    )
    verified = ContactVerified(
        reference=reference("j"),
        contact=ContactKind.EMAIL,
        value="marie@example.org",
        method=VerificationMethod.EMAIL_LINK,
        verified_at=local("ramq", 2026, 6, 18, 11),
    )
    for data in (status_update, verified):
        assert entry_of(make_event(data, source_key="test:j:other")) is None


def test_an_entry_before_its_complaint_is_kept_and_the_complaint_completes_it() -> None:
    early = entry_of(acknowledged("k", local("ramq", 2026, 6, 19, 9)))
    assert early is not None
    complaint = FOLD(None, early)
    assert complaint.received_at is None
    assert complaint.acknowledge_delay is None  # unknown until the complaint is read
    later = entry_of(received("k", local("ramq", 2026, 6, 18, 10)))
    assert later is not None
    assert FOLD(complaint, later).acknowledge_delay == 1


def test_business_days_leave_out_weekends_and_the_policys_holidays() -> None:
    ramq, france = BUILTIN_POLICIES["ramq"], BUILTIN_POLICIES["fr-marianne"]
    assert business_days_between(ramq, date(2026, 12, 23), date(2026, 12, 28)) == 2
    assert business_days_between(france, date(2026, 12, 23), date(2026, 12, 28)) == 2
    assert business_days_between(ramq, date(2026, 4, 2), date(2026, 4, 6)) == 1  # Good Friday
    assert business_days_between(france, date(2026, 4, 2), date(2026, 4, 6)) == 1  # Easter Monday
    assert business_days_between(ramq, date(2026, 4, 6), date(2026, 4, 2)) == 0
