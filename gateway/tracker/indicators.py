"""Service-quality indicators, from the tracker's counts: how well the office keeps its promises.

Per due-date policy, per month of receipt and per channel (and ``all`` channels, and every month
together), counts only, no reference and nothing personal:

- **acknowledgement**, over the complaints that can be acknowledged (not anonymous, a contact
  given; the others are ``not_reachable``): acknowledged in time (on or before the promised
  date), late, overdue (not acknowledged, the date passed) and pending (not yet due);
  ``share_in_time`` = in time / (in time + late + overdue), so complaints not yet due count
  neither way; the median and 90th percentile of the delay (nearest rank) in the policy's own
  days (business days without weekends and its holidays, or calendar days);
- **answer**, the same against the respond-by date, over **complete** requests only (RAMQ
  promises its 20 days "if the request is complete"): requests flagged ``needs_review`` are
  counted apart (``incomplete``) with their own outcomes;
- **open past due**: not answered, the respond-by date passed (complete and incomplete);
- **satisfaction**: how many answers gave each rating, 1 to 5.

``IndicatorBoard`` keeps the last figures and computes them again at most every
``GATEWAY_TRACKER_INDICATORS_REFRESH_S``: one computation at a time, the others served the
figures at hand meanwhile (only the first request of a process waits).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import structlog
from pydantic import BaseModel, Field

from gateway.normalizers.due import DuePolicy, Period
from gateway.store.tracker import CountRow, Outcome, PolicyFigures, TrackerStore

log = structlog.get_logger(__name__)

ALL = "all"
RATINGS = ("1", "2", "3", "4", "5")


class Step(BaseModel):
    """Where complaints stand against one promised date."""

    in_time: int = 0
    late: int = 0
    overdue: int = 0
    pending: int = 0
    share_in_time: float | None = Field(
        default=None, description="in time / (in time + late + overdue); null when none is due"
    )
    median_days: int | None = Field(default=None, description="in the policy's own days")
    p90_days: int | None = None


class Incomplete(BaseModel):
    """Requests flagged needs_review, counted apart from the answer share."""

    received: int = 0
    answered_in_time: int = 0
    answered_late: int = 0
    open_past_due: int = 0


class Figures(BaseModel):
    received: int = 0
    not_reachable: int = Field(default=0, description="anonymous or no contact: no acknowledgement")
    acknowledgement: Step = Step()
    answer: Step = Field(default=Step(), description="complete requests only")
    incomplete: Incomplete = Incomplete()
    open_past_due: int = 0
    satisfaction: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(RATINGS, 0))


class Slice(BaseModel):
    month: str = Field(description="YYYY-MM of receipt (the policy's time zone), or all")
    channel: str = Field(description="email, webform, sms, postal, or all")
    figures: Figures


class Promise(BaseModel):
    days: int
    count: str = Field(description="business_days or calendar_days")


class PolicyIndicators(BaseModel):
    policy: str
    acknowledge: Promise | None = None
    respond: Promise | None = None
    today: date = Field(description="the day the outcomes are told on, in the policy's zone")
    slices: list[Slice]


class Indicators(BaseModel):
    generated_at: datetime
    policies: list[PolicyIndicators]


def indicators_of(
    figures: Iterable[PolicyFigures], policies: Mapping[str, DuePolicy]
) -> Indicators:
    return Indicators(
        generated_at=datetime.now(UTC),
        policies=[_policy(found, policies.get(found.policy)) for found in figures],
    )


def _policy(found: PolicyFigures, policy: DuePolicy | None) -> PolicyIndicators:
    slices: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for row in found.counts:
        for key in _keys(row.month, row.channel):
            _count(slices[key], row)
    delays: dict[tuple[str, str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for delay in found.delays:
        if delay.step == "respond" and not delay.complete:
            continue  # the answer's delays: complete requests, as its share
        for month, channel in _keys(delay.month, delay.channel):
            delays[month, channel, delay.step][delay.days] += delay.complaints
    for rating in found.ratings:
        for key in _keys(rating.month, rating.channel):
            slices[key].satisfaction[str(rating.rating)] += rating.complaints
    for (month, channel), figures in slices.items():
        _finish(figures.acknowledgement, delays.get((month, channel, "acknowledge"), {}))
        _finish(figures.answer, delays.get((month, channel, "respond"), {}))
    ordered = sorted(slices.items(), key=lambda item: (item[0][0] == ALL, item[0]))
    return PolicyIndicators(
        policy=found.policy,
        acknowledge=_promise(policy.acknowledge) if policy else None,
        respond=_promise(policy.respond) if policy else None,
        today=found.today,
        slices=[Slice(month=month, channel=channel, figures=f) for (month, channel), f in ordered],
    )


def _keys(month: str, channel: str) -> list[tuple[str, str]]:
    """The slices a row counts in: its own, its month's ``all``, every month's."""
    return [(month, channel), (month, ALL), (ALL, channel), (ALL, ALL)]


def _count(figures: Figures, row: CountRow) -> None:
    number = row.complaints
    figures.received += number
    if row.answer == Outcome.OVERDUE:
        figures.open_past_due += number
    if row.reachable:
        _add(figures.acknowledgement, row.acknowledgement, number)
    else:
        figures.not_reachable += number
    if row.complete:
        _add(figures.answer, row.answer, number)
        return
    incomplete = figures.incomplete
    incomplete.received += number
    incomplete.answered_in_time += number if row.answer == Outcome.IN_TIME else 0
    incomplete.answered_late += number if row.answer == Outcome.LATE else 0
    incomplete.open_past_due += number if row.answer == Outcome.OVERDUE else 0


def _finish(step: Step, delays: Mapping[int, int]) -> None:
    """The share in time and the delays' median and 90th percentile."""
    due = step.in_time + step.late + step.overdue
    step.share_in_time = round(step.in_time / due, 4) if due else None
    step.median_days = _percentile(delays, 0.5)
    step.p90_days = _percentile(delays, 0.9)


def _add(step: Step, outcome: Outcome, number: int) -> None:
    setattr(step, str(outcome), getattr(step, str(outcome)) + number)


def _percentile(histogram: Mapping[int, int], fraction: float) -> int | None:
    """Nearest rank: the smallest delay at or below which ``fraction`` of the complaints are."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = math.ceil(fraction * total), 0
    for days in sorted(histogram):
        seen += histogram[days]
        if seen >= rank:
            return days
    return max(histogram)


def _promise(period: Period) -> Promise:
    return Promise(days=period.days, count=str(period.count))


def today_in(policy: DuePolicy | None) -> date:
    zone = ZoneInfo(policy.timezone) if policy else UTC
    return datetime.now(zone).date()


async def compute(store: TrackerStore, policies: Mapping[str, DuePolicy]) -> Indicators:
    found = [
        await store.figures(name, today_in(policies.get(name))) for name in await store.policies()
    ]
    return indicators_of(found, policies)


class IndicatorBoard:
    """The last indicators, computed again at most every ``refresh_s``."""

    def __init__(
        self, store: TrackerStore, policies: Mapping[str, DuePolicy], refresh_s: float
    ) -> None:
        self._store = store
        self._policies = dict(policies)
        self._refresh_s = refresh_s
        self._current: Indicators | None = None
        self._computed_at = 0.0
        self._computing: asyncio.Task[Indicators] | None = None

    async def current(self) -> Indicators:
        """The figures at hand (their refresh started if they are old); the first call waits
        for them."""
        if time.monotonic() - self._computed_at >= self._refresh_s:
            self._start()
        if self._current is not None:
            return self._current
        computing = self._start()
        return await asyncio.shield(computing)

    def _start(self) -> asyncio.Task[Indicators]:
        if self._computing is None or self._computing.done():
            self._computing = asyncio.create_task(self._compute())
            self._computing.add_done_callback(_logged)
        return self._computing

    async def _compute(self) -> Indicators:
        indicators = await compute(self._store, self._policies)
        self._current, self._computed_at = indicators, time.monotonic()
        return indicators


def _logged(task: asyncio.Task[Indicators]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("tracker.indicators_not_computed", error=str(error))
