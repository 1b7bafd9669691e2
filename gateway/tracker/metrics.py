"""Prometheus gauges of the indicators (every month together), read from the tracker's store
(every replica's complaints, whoever serves the scrape) by the HTTP server's process every
``GATEWAY_TRACKER_INDICATORS_REFRESH_S`` (``keep_fresh``). Counts and shares only.

- ``gateway_complaints_tracked{policy, channel}``: complaints received;
- ``gateway_complaints_in_time_ratio{policy, step, channel}``: share acknowledged
  (``step="acknowledge"``) or answered (``respond``, complete requests) within the policy's
  delay, of those due (absent while none is);
- ``gateway_complaints_open_past_due{policy, channel}``: not answered, respond-by date passed;
- ``gateway_complaints_satisfaction{policy, rating}``: answers of each rating, 1 to 5.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Gauge

from gateway.errors import StateStoreError
from gateway.store.tracker import TrackerStore
from gateway.tracker.indicators import ALL, IndicatorBoard, Indicators

log = structlog.get_logger(__name__)

TRACKED = Gauge(
    "gateway_complaints_tracked",
    "Complaints received, by due-date policy and channel",
    ["policy", "channel"],
    multiprocess_mode="mostrecent",
)
IN_TIME = Gauge(
    "gateway_complaints_in_time_ratio",
    "Share of the complaints due that were acknowledged (step=acknowledge) or answered "
    "(step=respond, complete requests) within the policy's delay",
    ["policy", "step", "channel"],
    multiprocess_mode="mostrecent",
)
OPEN_PAST_DUE = Gauge(
    "gateway_complaints_open_past_due",
    "Complaints not answered whose respond-by date has passed",
    ["policy", "channel"],
    multiprocess_mode="mostrecent",
)
SATISFACTION = Gauge(
    "gateway_complaints_satisfaction",
    "Satisfaction answers by rating (1 very dissatisfied ... 5 very satisfied)",
    ["policy", "rating"],
    multiprocess_mode="mostrecent",
)


def show(indicators: Indicators) -> None:
    """Set the gauges from the indicators (the slices of every month)."""
    for policy in indicators.policies:
        for piece in policy.slices:
            if piece.month != ALL:
                continue
            figures, channel = piece.figures, piece.channel
            TRACKED.labels(policy.policy, channel).set(figures.received)
            OPEN_PAST_DUE.labels(policy.policy, channel).set(figures.open_past_due)
            for step, shown in (
                ("acknowledge", figures.acknowledgement),
                ("respond", figures.answer),
            ):
                if shown.share_in_time is not None:
                    IN_TIME.labels(policy.policy, step, channel).set(shown.share_in_time)
            if channel == ALL:
                for rating, answers in figures.satisfaction.items():
                    SATISFACTION.labels(policy.policy, rating).set(answers)


async def keep_fresh(board: IndicatorBoard, store: TrackerStore, every_s: float) -> None:
    """Refresh until the store is closed (the process stops)."""
    while not store.closed:
        try:
            show(await board.current())
        except StateStoreError as exc:
            if store.closed:
                return
            log.warning("tracker.metrics_not_refreshed", error=str(exc))
        await asyncio.sleep(every_s)
