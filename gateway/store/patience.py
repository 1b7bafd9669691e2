"""Writes worth waiting for while the state database restarts.

Once an event is on the topic, the rows that go with it (the idempotency answer, the contacts
that unlock "send documents", the catalog of its objects, the dead-letter record) should be
kept rather than the request answered 503: a 503 makes the client send again, and the retry
publishes the event a second time (the same event id, but twice on the topic). The same holds
for letting go of an idempotency key's claim after a failure (else the client's retries are
refused until the claim's lease ends). A state database restarting or a connection lost
(``StateStoreUnavailable``) is waited out for a while; any other error, or an outage longer
than the patience, is raised as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from gateway.errors import StateStoreUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

PATIENCE_S = 30.0  # a PostgreSQL restart or fail-over takes seconds, a client waits a minute
FIRST_PAUSE_S = 0.1
LONGEST_PAUSE_S = 2.0


async def until_available(
    what: str, write: Callable[[], Awaitable[T]], patience_s: float = PATIENCE_S
) -> T:
    """``write()``, tried again while the state database is unavailable, for ``patience_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            return await write()
        except StateStoreUnavailable as exc:
            if loop.time() + pause > deadline:
                log.warning("state.write_abandoned", what=what, error=str(exc))
                raise
            log.warning("state.write_retried", what=what, error=str(exc), pause_s=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
