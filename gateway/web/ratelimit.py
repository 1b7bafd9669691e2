"""Rate limits per client address and per form: token buckets in memory (per process).

Each key gets ``limit`` requests per window (a minute unless told), in bursts of up to that
many; the least recently seen keys are forgotten past ``max_keys`` so an address scan cannot
grow memory without bound.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, limit: int, max_keys: int = 100_000, window_s: float = 60.0) -> None:
        self._rate = limit / window_s
        self._burst = float(limit)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, key: str, now: float | None = None) -> float | None:
        """None when the request may go on (and counts it), else seconds to wait."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self._burst, moment))
        tokens = min(self._burst, tokens + (moment - last) * self._rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, moment)
            return None
        self._remember(key, tokens, moment)
        return (1.0 - tokens) / self._rate

    def _remember(self, key: str, tokens: float, moment: float) -> None:
        self._buckets[key] = (tokens, moment)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
