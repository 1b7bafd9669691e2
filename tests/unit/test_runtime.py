"""``run``'s start with several HTTP workers: what only saves memory never stops a start-up."""

from __future__ import annotations

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
