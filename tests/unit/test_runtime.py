"""``run``'s start with several HTTP workers: what only saves memory never stops a start-up; its
services begun and ended together."""

from __future__ import annotations

import asyncio

import pytest

from gateway import runtime
from gateway.settings import GatewaySettings
from gateway.zygote import WorkerZygote


def test_when_the_models_or_the_zygote_fail_then_the_workers_start_fresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_models(languages: object) -> None:
        raise RuntimeError("the language models cannot be loaded")

    def no_fork(target: object, settings: object) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(runtime, "warm_up", no_models)
    monkeypatch.setattr(WorkerZygote, "start", no_fork)
    settings = GatewaySettings.model_validate({"http": {"workers": 2}})
    assert runtime._forked_workers(settings) is None


class Recorded:
    """A service that says whether its ``run`` began and whether its ``finally`` ran."""

    name = "recorded"

    def __init__(self) -> None:
        self.began = self.ended = False

    async def run(self) -> None:
        self.began = True
        try:
            await asyncio.Event().wait()  # as a consumer's start waits for the broker
        finally:
            self.ended = True


async def test_given_a_stop_during_start_up_then_each_service_begins_and_ends() -> None:
    """A Ctrl-C before the services' tasks ran: each still runs its ``finally`` (where a
    service stops the Kafka client it was built with)."""
    stop = asyncio.Event()
    stop.set()
    services = [Recorded(), Recorded()]
    await runtime.run_until(stop, services)
    assert [(s.began, s.ended) for s in services] == [(True, True), (True, True)]


async def test_given_a_stop_later_then_each_service_runs_until_it() -> None:
    stop = asyncio.Event()
    services = [Recorded(), Recorded()]
    running = asyncio.ensure_future(runtime.run_until(stop, services))
    await asyncio.sleep(0.05)
    assert [(s.began, s.ended) for s in services] == [(True, False), (True, False)]
    stop.set()
    await running
    assert [(s.began, s.ended) for s in services] == [(True, True), (True, True)]
