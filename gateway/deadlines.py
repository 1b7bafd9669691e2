"""One timer for many waits: cancels a wait for a Kafka acknowledgement past its deadline.

``asyncio.timeout`` arms a timer per call; with hundreds of publishes in flight that costs about
a tenth of the publisher's throughput. Every wait here has the same length, so deadlines come in
the order the waits began: one periodic task cancels the overdue ones, O(overdue) per tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from types import TracebackType


class DeadlineExceeded(Exception):
    """The wait went past its deadline (raised in place of the cancellation that ended it)."""


class DeadlineWatch:
    """``with watch.deadline(): await ...`` takes at most ``timeout_s`` (+ one tick)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._tick_s = min(0.1, timeout_s / 10)
        self._armed: dict[int, tuple[float, asyncio.Task[object]]] = {}
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._expiry: asyncio.Task[None] | None = None

    def deadline(self) -> _Deadline:
        """Bound the awaits in a ``with`` block; DeadlineExceeded when the deadline passes."""
        loop = asyncio.get_running_loop()
        if self._expiry is None or self._expiry.done() or self._expiry.get_loop() is not loop:
            self._expiry = loop.create_task(self._expire_forever())
        return _Deadline(self, loop.time() + self._timeout_s)

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
            self._expiry = None

    async def _expire_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick_s)
            overdue = list(itertools.takewhile(_due_by(loop.time()), self._armed.items()))
            for token, (_, task) in overdue:
                del self._armed[token]
                self._fired.add(token)
                task.cancel()


def _due_by(now: float) -> Callable[[tuple[int, tuple[float, asyncio.Task[object]]]], bool]:
    return lambda item: item[1][0] <= now


class _Deadline:
    """One armed deadline (a plain class: cheaper than a generator context manager)."""

    __slots__ = ("_at", "_task", "_token", "_watch")

    def __init__(self, watch: DeadlineWatch, at: float) -> None:
        self._watch, self._at, self._token = watch, at, -1
        self._task: asyncio.Task[object] | None = None

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline is used inside a task")
        self._task, self._token = task, next(self._watch._tokens)
        self._watch._armed[self._token] = (self._at, task)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        watch, token = self._watch, self._token
        watch._armed.pop(token, None)
        if token in watch._fired:
            watch._fired.discard(token)
            if exc_type is asyncio.CancelledError and self._task is not None:
                self._task.uncancel()
                raise DeadlineExceeded from None
