"""Channel adapters: each talks to one source (IMAP, HTTP, Twilio, a folder) and hands
``RawMessage``s to the intake. No business rules here: those are the normalizers'.

A channel acknowledges its source (flags the mail, moves the scan, answers 202) only after the
intake returned, that is after Kafka acknowledged the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

from gateway.channels.raw import RawMessage

__all__ = ["ChannelAdapter", "Deliver", "RawMessage"]

Deliver = Callable[[RawMessage], Awaitable[object]]


class ChannelAdapter(Protocol):
    """One source of complaints. Open with ``async with``; ``run`` returns only when cancelled."""

    name: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def run(self, deliver: Deliver) -> None:
        """Hand every new input to ``deliver``; acknowledge the source after it returned."""
        ...
