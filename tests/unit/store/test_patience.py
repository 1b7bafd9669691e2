"""Writes after a publish wait out a state database that is restarting, and only that."""

from __future__ import annotations

import pytest

from gateway.errors import StateStoreError, StateStoreUnavailable
from gateway.store.patience import until_available


class FlakyWrite:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "kept"


async def test_an_unavailable_database_is_waited_out() -> None:
    write = FlakyWrite([StateStoreUnavailable("restarting"), StateStoreUnavailable("refused")])
    assert await until_available("answer", write, patience_s=5) == "kept"
    assert write.calls == 3


async def test_another_error_is_raised_at_once() -> None:
    write = FlakyWrite([StateStoreError("database or disk is full")])
    with pytest.raises(StateStoreError, match="disk is full"):
        await until_available("answer", write, patience_s=5)
    assert write.calls == 1


async def test_an_outage_longer_than_the_patience_is_raised() -> None:
    write = FlakyWrite([StateStoreUnavailable("down")] * 50)
    with pytest.raises(StateStoreUnavailable, match="down"):
        await until_available("answer", write, patience_s=0.5)
    assert 2 <= write.calls < 50
