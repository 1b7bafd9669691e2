"""What the status answer holds, and that it is given only for the right pairing."""

from __future__ import annotations

from datetime import date

from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.store.sqlite_state import SqliteStateStore
from gateway.store.sqlite_tracker import SqliteTrackerStore
from gateway.tracker.standing import StatusLookup, contact_as_recorded
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.tracker import acknowledged, local, received, reference, status

FOLD = ComplaintFold(BUILTIN_POLICIES)


async def lookup_with(*names: str) -> StatusLookup:
    state, tracker = SqliteStateStore(None), SqliteTrackerStore(None)
    for name in names:
        events = [
            received(name, local("ramq", 2026, 6, 30, 22, 30)),  # July 1 in UTC
            acknowledged(name, local("ramq", 2026, 7, 2, 20)),
            status(
                name, "awaiting_information", local("ramq", 2026, 7, 3, 21, 15), "Envoyez-nous…"
            ),
        ]
        await tracker.apply([entry for entry in map(entry_of, events) if entry], FOLD)
        await state.record_contacts(reference(name), ["marie@example.org", "+15145550123"])
    return StatusLookup(state, tracker, BUILTIN_POLICIES)


async def test_the_right_pairing_gets_dates_told_in_the_offices_time_zone() -> None:
    lookup = await lookup_with("a")
    standing = await lookup.find(reference("a"), contact_as_recorded(" Marie@Example.org", "CA"))
    assert standing is not None
    assert standing.model_dump(mode="json") == {
        "reference": reference("a"),
        "status": "awaiting_information",
        "received_on": "2026-06-30",
        "acknowledged": True,
        "acknowledged_on": "2026-07-02",
        "acknowledge_by": "2026-07-03",
        "respond_by": "2026-07-29",
        "last_change": {
            "status": "awaiting_information",
            "on": "2026-07-03",
            "note": "Envoyez-nous…",
        },
    }
    by_phone = await lookup.find(reference("a"), contact_as_recorded("(514) 555-0123", "CA"))
    assert by_phone == standing


async def test_a_wrong_pairing_and_an_unknown_reference_both_get_none() -> None:
    lookup = await lookup_with("b")
    assert await lookup.find(reference("b"), "someone@example.org") is None
    assert await lookup.find(reference("nobody"), "marie@example.org") is None


def test_before_any_change_the_status_says_received_or_acknowledged() -> None:
    lookup = StatusLookup(SqliteStateStore(None), SqliteTrackerStore(None), BUILTIN_POLICIES)
    entry = entry_of(received("c", local("ramq", 2026, 6, 1, 10)))
    assert entry is not None
    complaint = FOLD(None, entry)
    assert lookup.standing(complaint).status == "received"
    ack = entry_of(acknowledged("c", local("ramq", 2026, 6, 2, 10)))
    assert ack is not None
    standing = lookup.standing(FOLD(complaint, ack))
    assert (standing.status, standing.acknowledged_on) == ("acknowledged", date(2026, 6, 2))
    assert standing.last_change is None
