"""Token buckets per key."""

from __future__ import annotations

from gateway.web.ratelimit import RateLimiter


def test_given_a_burst_then_the_limit_then_a_wait_then_again() -> None:
    limiter = RateLimiter(3)
    assert [limiter.retry_after("a", now=0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("a", now=0.0)
    assert wait is not None
    assert 19 < wait <= 20  # one token every 20 s
    assert limiter.retry_after("b", now=0.0) is None  # another key is not affected
    assert limiter.retry_after("a", now=20.0) is None


def test_forgotten_keys_are_bounded() -> None:
    limiter = RateLimiter(1, max_keys=10)
    for n in range(100):
        limiter.retry_after(f"client-{n}", now=0.0)
    assert len(limiter._buckets) == 10


def test_a_window_of_an_hour_refills_one_token_per_hour_over_the_limit() -> None:
    """GIVEN 3 a hour WHEN the 4th comes at once THEN it waits 20 minutes."""
    limiter = RateLimiter(3, window_s=3600.0)
    assert [limiter.retry_after("n", now=0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("n", now=0.0)
    assert wait is not None
    assert 1190 < wait <= 1200
