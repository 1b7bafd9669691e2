"""Prometheus gauges of the dead-letter queue, from the ``DlqStore`` (so every replica's records
count, whoever serves the scrape):

- ``gateway_dlq_open_records{reason}``: open records by reason code;
- ``gateway_dlq_oldest_open_age_seconds{reason}``: how long the oldest of them has waited.

They are read again from the store after every redrive or dismissal this process makes, and
every ``REFRESH_S`` by the HTTP server's process (``keep_fresh``); a reason with no open record
left reads 0. With several HTTP workers the last reading of any of them is served
(``mostrecent``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from prometheus_client import Gauge

from gateway.errors import StateStoreError
from gateway.store.dlq import DlqStore

log = structlog.get_logger(__name__)

REFRESH_S = 15.0
OPEN_RECORDS = Gauge(
    "gateway_dlq_open_records",
    "Dead-letter records not yet redriven or dismissed, by reason code",
    ["reason"],
    multiprocess_mode="mostrecent",
)
OLDEST_OPEN_AGE = Gauge(
    "gateway_dlq_oldest_open_age_seconds",
    "Age of the oldest open dead-letter record, by reason code (0: none open)",
    ["reason"],
    multiprocess_mode="mostrecent",
)
_shown: set[str] = set()  # reasons this process has a series of


async def refresh(store: DlqStore) -> None:
    """Read the open records' summary and set the gauges from it."""
    summary = await store.open_summary()
    now = datetime.now(UTC)
    current = set()
    for reason in summary:
        OPEN_RECORDS.labels(reason.reason_code).set(reason.open_records)
        age = max(0.0, (now - reason.oldest_recorded_at).total_seconds())
        OLDEST_OPEN_AGE.labels(reason.reason_code).set(age)
        current.add(reason.reason_code)
    for gone in _shown - current:
        OPEN_RECORDS.labels(gone).set(0)
        OLDEST_OPEN_AGE.labels(gone).set(0)
    _shown.update(current)


async def keep_fresh(store: DlqStore, every_s: float = REFRESH_S) -> None:
    """Refresh until the store is closed (the process stops)."""
    while not store.closed:
        try:
            await refresh(store)
        except StateStoreError as exc:
            if store.closed:
                return
            log.warning("dlq.metrics_not_refreshed", error=str(exc))
        await asyncio.sleep(every_s)
