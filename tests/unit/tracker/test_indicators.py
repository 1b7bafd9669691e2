"""Indicators from synthetic streams with known answers: complaints across the Saint-Jean, Canada
Day and the Ascension, acknowledged on the last allowed day or one day late, answered in and out
of time, incomplete and anonymous ones apart; redelivered, and folded again in another order
(a rebuild): the same figures."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest

from gateway.events.envelope import CloudEvent
from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.store.sqlite_tracker import SqliteTrackerStore
from gateway.store.tracker import TimelineEntry
from gateway.tracker.indicators import (
    ALL,
    Figures,
    IndicatorBoard,
    Indicators,
    indicators_of,
)
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.tracker import synthetic_stream

FOLD = ComplaintFold(BUILTIN_POLICIES)
TODAY = {"ramq": date(2026, 7, 28), "fr-marianne": date(2026, 7, 28)}


def stream() -> list[CloudEvent[Any]]:
    return synthetic_stream()


def entries() -> list[TimelineEntry]:
    return [entry for entry in map(entry_of, stream()) if entry is not None]


async def figures_after(*batches: list[TimelineEntry]) -> Indicators:
    store = SqliteTrackerStore(None)
    for batch in batches:
        await store.apply(batch, FOLD)
    found = [await store.figures(policy, TODAY[policy]) for policy in await store.policies()]
    await store.close()
    return indicators_of(found, BUILTIN_POLICIES)


def slice_of(indicators: Indicators, policy: str, month: str, channel: str) -> Figures:
    (found,) = [p for p in indicators.policies if p.policy == policy]
    (piece,) = [s for s in found.slices if (s.month, s.channel) == (month, channel)]
    return piece.figures


async def test_known_answers_for_the_ramq_june_email_complaints() -> None:
    june = slice_of(await figures_after(entries()), "ramq", "2026-06", "email")
    assert june.received == 4
    assert june.not_reachable == 1  # D
    ack = june.acknowledgement
    assert (ack.in_time, ack.late, ack.overdue, ack.pending) == (2, 1, 0, 0)  # A, C | B
    assert ack.share_in_time == pytest.approx(2 / 3, abs=1e-4)
    assert (ack.median_days, ack.p90_days) == (2, 3)  # delays 1, 2, 3 (business days)
    answer = june.answer  # complete requests: A, B, D
    assert (answer.in_time, answer.late, answer.overdue, answer.pending) == (1, 1, 1, 0)
    assert answer.share_in_time == pytest.approx(1 / 3, abs=1e-4)
    assert (answer.median_days, answer.p90_days) == (20, 21)
    assert june.incomplete.model_dump() == {
        "received": 1,
        "answered_in_time": 0,
        "answered_late": 0,
        "open_past_due": 1,
    }
    assert june.open_past_due == 2  # C and D
    assert june.satisfaction == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}


async def test_months_channels_and_totals_add_up() -> None:
    indicators = await figures_after(entries())
    web = slice_of(indicators, "ramq", "2026-06", "webform")  # 21:30 on June 30, Montréal
    assert web.received == 1
    assert (web.acknowledgement.in_time, web.acknowledgement.median_days) == (1, 2)  # July 1 off
    assert (web.answer.pending, web.answer.share_in_time) == (1, None)  # due July 29
    june = slice_of(indicators, "ramq", "2026-06", ALL)
    everything = slice_of(indicators, "ramq", ALL, ALL)
    assert june.received == everything.received == 5
    assert everything.acknowledgement.share_in_time == pytest.approx(3 / 4, abs=1e-4)
    france = slice_of(indicators, "fr-marianne", "2026-05", "email")
    assert (france.acknowledgement.late, france.acknowledgement.median_days) == (1, 3)
    assert (france.answer.in_time, france.answer.median_days) == (1, 15)
    ramq_policy = next(p for p in indicators.policies if p.policy == "ramq")
    assert ramq_policy.acknowledge is not None
    assert (ramq_policy.acknowledge.days, ramq_policy.acknowledge.count) == (2, "business_days")
    assert "reference" not in indicators.model_dump_json()  # counts only


async def test_redelivered_and_refolded_in_another_order_give_the_same_figures() -> None:
    first = await figures_after(entries())
    shuffled = entries()
    random.Random(7).shuffle(shuffled)  # noqa: S311 (an order, not a secret)
    again = await figures_after(shuffled[:9], entries(), shuffled[9:], shuffled)
    assert again.policies == first.policies


async def test_the_board_computes_once_per_period_and_serves_the_figures_at_hand() -> None:
    store = SqliteTrackerStore(None)
    await store.apply(entries()[:4], FOLD)
    board = IndicatorBoard(store, BUILTIN_POLICIES, refresh_s=3600)
    first = await board.current()
    await store.apply(entries()[4:], FOLD)
    assert await board.current() is first  # not computed again within the period
    fresh = IndicatorBoard(store, BUILTIN_POLICIES, refresh_s=0)
    await fresh.current()
    later = await fresh.current()  # stale at once: served, and computed again behind
    assert later.policies
    await store.close()
