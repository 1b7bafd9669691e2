"""What every ``DlqStore`` promises (``gateway.store.dlq``), on SQLite and on PostgreSQL, with two
openings of the same state standing for two replicas (or two processes of one machine)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.backends import StateBackend
from gateway.store.dlq import AmbiguousId, DlqRecord, DlqStatus
from tests.integration.store.conftest import Opener

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def record(number: int, reason_code: str = "not_a_complaint", **changes: object) -> DlqRecord:
    values: dict[str, object] = {
        "id": f"{number:08x}-0000-5000-8000-000000000000",
        "channel": "email",
        "reason_code": reason_code,
        "reason": "the input could not be normalised",
        "source_key": f"email:<m{number}@example.org>",
        "source": "urn:intake-gateway:email:INBOX",
        "source_id": f"<m{number}@example.org>",
        "source_uri": f"file:///objects/{number:064x}",
        "received_at": AT - timedelta(minutes=5),
        "recorded_at": AT + timedelta(minutes=number),
        "details": {"file": f"scan-{number}.pdf"},
    }
    values.update(changes)
    return DlqRecord(**values)  # type: ignore[arg-type]


async def test_a_record_is_kept_once_and_found_by_id_or_prefix_on_any_replica(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    first = record(1)
    assert await one.dlq.add(first)
    assert not await other.dlq.add(replace(first, reason="another reason"))  # the same id
    found = await other.dlq.get(first.id)
    assert found == first
    assert await other.dlq.get(first.id[:6].upper()) == first  # as an operator types it
    assert await one.dlq.get("00000009") is None
    assert await one.dlq.get("x; DROP TABLE dlq_record") is None
    await one.dlq.add(record(0x10))
    await one.dlq.add(record(0x11))
    with pytest.raises(AmbiguousId):
        await other.dlq.get("0000001")


async def test_records_are_listed_newest_first_by_time_reason_and_status(
    backend: StateBackend,
) -> None:
    for number, reason in ((1, "no_text"), (2, "corrupt_pdf"), (3, "no_text")):
        await backend.dlq.add(record(number, reason, channel="postal"))
    listed = await backend.dlq.records()
    assert [r.id[:8] for r in listed] == ["00000003", "00000002", "00000001"]
    assert listed[0].details == {"file": "scan-3.pdf"}
    assert listed[0].status == DlqStatus.OPEN
    no_text = await backend.dlq.records(reason_code="no_text")
    assert [r.id[:8] for r in no_text] == ["00000003", "00000001"]
    since = await backend.dlq.records(since=AT + timedelta(minutes=2))
    assert [r.id[:8] for r in since] == ["00000003", "00000002"]
    assert await backend.dlq.records(limit=1) == listed[:1]
    assert await backend.dlq.dismiss(listed[0].id, "marie")
    assert [r.id[:8] for r in await backend.dlq.records()] == ["00000002", "00000001"]
    dismissed = await backend.dlq.records(status=DlqStatus.DISMISSED)
    assert [(r.id[:8], r.closed_by) for r in dismissed] == [("00000003", "marie")]
    assert len(await backend.dlq.records(status=None)) == 3


async def test_of_two_redrives_at_once_on_two_replicas_exactly_one_wins(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.dlq.add(record(1))
    won = await asyncio.gather(
        one.dlq.claim(record(1).id, "attempt-a"), other.dlq.claim(record(1).id, "attempt-b")
    )
    assert sorted(won) == [False, True]
    winner, loser = ("attempt-a", "attempt-b") if won[0] else ("attempt-b", "attempt-a")
    assert not await other.dlq.dismiss(record(1).id, "paul")  # held by the attempt
    assert not await one.dlq.finish(record(1).id, loser, "paul", ["e-2"])
    assert await other.dlq.finish(record(1).id, winner, "marie", ["e-1"], "complaint.received")
    closed = await one.dlq.get(record(1).id)
    assert closed is not None
    assert (closed.status, closed.closed_by, closed.event_ids) == ("redriven", "marie", ("e-1",))
    assert closed.attempts == 1
    assert closed.closed_at is not None
    assert await one.dlq.records() == []
    assert not await one.dlq.claim(record(1).id, "attempt-c")  # a second redrive: nothing
    assert not await one.dlq.dismiss(record(1).id, "paul")
    [action] = await other.dlq.actions(record(1).id)
    assert (action.action, action.by, action.outcome) == ("redrive", "marie", "redriven")


async def test_a_failed_attempt_leaves_the_record_open_with_the_new_reason(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.dlq.add(record(1, "corrupt_pdf"))
    assert await one.dlq.claim(record(1).id, "attempt-a")
    assert await one.dlq.release(record(1).id, "attempt-a", "marie", "no_text", "no text")
    again = await other.dlq.get(record(1).id)
    assert again is not None
    assert (again.status, again.reason_code, again.reason, again.attempts) == (
        "open",
        "no_text",
        "no text",
        1,
    )
    assert await other.dlq.claim(record(1).id, "attempt-b")  # free again
    assert not await other.dlq.release(record(1).id, "attempt-a", "marie", "x", "x")  # not its
    await one.dlq.unclaim(record(1).id, "attempt-a")  # not its claim: nothing changes
    assert not await one.dlq.claim(record(1).id, "attempt-c")
    await other.dlq.unclaim(record(1).id, "attempt-b")  # Kafka was down: free, unchanged
    assert await one.dlq.claim(record(1).id, "attempt-c")
    unchanged = await one.dlq.get(record(1).id)
    assert unchanged is not None
    assert (unchanged.attempts, unchanged.reason_code) == (1, "no_text")
    [action] = await one.dlq.actions(record(1).id)
    assert (action.outcome, action.by, action.detail) == (
        "still_rejected",
        "marie",
        "no_text: no text",
    )


async def test_an_attempt_whose_lease_ran_out_is_taken_over(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.dlq.add(record(1))
    assert await one.dlq.claim(record(1).id, "attempt-a", lease_s=0.3)
    assert not await other.dlq.claim(record(1).id, "attempt-b")
    await asyncio.sleep(0.5)  # attempt-a's process died
    assert await other.dlq.claim(record(1).id, "attempt-b")
    assert not await one.dlq.finish(record(1).id, "attempt-a", "marie", ["e-1"])
    assert await other.dlq.finish(record(1).id, "attempt-b", "paul", ["e-1"])


async def test_open_records_are_summed_by_reason_with_the_oldest(backend: StateBackend) -> None:
    await backend.dlq.add(record(3, "no_text"))
    await backend.dlq.add(record(1, "no_text"))
    await backend.dlq.add(record(2, "documents_unmatched", channel="webform"))
    await backend.dlq.add(record(4, "corrupt_pdf"))
    await backend.dlq.dismiss(record(4).id, "marie")
    summary = await backend.dlq.open_summary()
    assert [(s.reason_code, s.open_records, s.oldest_recorded_at) for s in summary] == [
        ("documents_unmatched", 1, AT + timedelta(minutes=2)),
        ("no_text", 2, AT + timedelta(minutes=1)),
    ]
