"""Token buckets per key."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.store.buckets import MemoryBuckets, SharedBuckets
from gateway.web.ratelimit import RateLimiter


async def test_given_a_burst_then_the_limit_then_a_wait_then_again() -> None:
    limiter = RateLimiter(3)
    assert [await limiter.retry_after("a", now=0.0) for _ in range(3)] == [None, None, None]
    wait = await limiter.retry_after("a", now=0.0)
    assert wait is not None
    assert 19 < wait <= 20  # one token every 20 s
    assert await limiter.retry_after("b", now=0.0) is None  # another key is not affected
    assert await limiter.retry_after("a", now=20.0) is None


async def test_forgotten_keys_are_bounded() -> None:
    buckets = MemoryBuckets(max_keys=10)
    limiter = RateLimiter(1, store=buckets)
    for n in range(100):
        await limiter.retry_after(f"client-{n}", now=0.0)
    assert len(buckets) == 10


async def test_a_window_of_an_hour_refills_one_token_per_hour_over_the_limit() -> None:
    """GIVEN 3 a hour WHEN the 4th comes at once THEN it waits 20 minutes."""
    limiter = RateLimiter(3, window_s=3600.0)
    assert [await limiter.retry_after("n", now=0.0) for _ in range(3)] == [None, None, None]
    wait = await limiter.retry_after("n", now=0.0)
    assert wait is not None
    assert 1190 < wait <= 1200


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(min_value=0, max_value=30)),
        max_size=60,
    )
)
def test_property_shared_buckets_answer_as_the_in_memory_ones(
    requests: list[tuple[str, float]],
) -> None:
    async def compare(buckets: SharedBuckets) -> None:
        in_memory, shared = RateLimiter(3), RateLimiter(3, store=buckets, name="client")
        now = 0.0
        for key, later in requests:
            now += later
            expected = await in_memory.retry_after(key, now=now)
            got = await shared.retry_after(key, now=now)
            assert (got is None) == (expected is None)
            if got is not None and expected is not None:
                assert abs(got - expected) < 1e-6

    with tempfile.TemporaryDirectory() as folder:
        buckets = SharedBuckets(Path(folder) / "limits.bin")
        asyncio.run(compare(buckets))
        buckets.close()


async def test_given_two_workers_on_one_table_then_they_share_one_allowance(tmp_path: Path) -> None:
    """Two opens of the file stand for two processes (the lock is the kernel's, per file)."""
    first = SharedBuckets(tmp_path / "limits.bin")
    second = SharedBuckets(tmp_path / "limits.bin")
    one, other = RateLimiter(4, store=first, name="c"), RateLimiter(4, store=second, name="c")
    answers = [await (one if n % 2 else other).retry_after("10.0.0.1", now=0.0) for n in range(6)]
    assert answers[:4] == [None] * 4
    assert None not in answers[4:]
    assert await RateLimiter(4, store=second, name="form").retry_after("10.0.0.1", now=0.0) is None
    first.close()
    second.close()


async def test_given_a_full_neighbourhood_then_the_stalest_key_is_forgotten(tmp_path: Path) -> None:
    buckets = SharedBuckets(tmp_path / "limits.bin", slots=4)
    limiter = RateLimiter(1, store=buckets, name="c")
    assert await limiter.retry_after("old", now=0.0) is None
    assert await limiter.retry_after("old", now=0.0) is not None
    for n in range(10):  # more keys than slots: "old" is the stalest, its slot is taken
        await limiter.retry_after(f"new-{n}", now=1.0 + n)
    assert await limiter.retry_after("old", now=11.0) is None  # forgotten: a fresh bucket
    buckets.close()


async def test_each_table_has_its_own_salt(tmp_path: Path) -> None:
    first, second = SharedBuckets(tmp_path / "a.bin"), SharedBuckets(tmp_path / "b.bin")
    assert first._salt != second._salt
    again = SharedBuckets(tmp_path / "a.bin")
    assert again._salt == first._salt  # reopened: kept
    again.close()
    first.close()
    second.close()
