"""DeadlineWatch: one timer bounds many waits."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.deadlines import DeadlineExceeded, DeadlineWatch


async def test_given_a_wait_past_its_deadline_then_deadline_exceeded_in_bounded_time() -> None:
    watch = DeadlineWatch(0.3)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), watch.deadline():
        await never
    assert 0.3 <= time.monotonic() - started < 1.0
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
    await watch.close()


async def test_given_waits_that_finish_in_time_then_their_results_come_back() -> None:
    watch = DeadlineWatch(1.0)

    async def quick(n: int) -> int:
        with watch.deadline():
            await asyncio.sleep(0.01)
        return n

    assert await asyncio.gather(*(quick(n) for n in range(100))) == list(range(100))
    await watch.close()


async def test_given_an_outside_cancellation_then_it_stays_a_cancellation() -> None:
    watch = DeadlineWatch(5.0)

    async def waits() -> None:
        with watch.deadline():
            await asyncio.sleep(10)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await watch.close()
