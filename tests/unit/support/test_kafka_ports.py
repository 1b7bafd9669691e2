"""The test brokers' start on free ports: made again when a port was taken meanwhile."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import pytest

from tests.support.kafka import PORT_ATTEMPTS, LocalBroker, started_on_free_ports

TAKEN = "Caused by: java.net.BindException: Address already in use"


@dataclass
class _Broker(LocalBroker):
    """A broker whose start fails with ``failure`` (the script's standard error), or not."""

    failure: str | None = None
    calls: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.calls.append("start")
        if self.failure is not None:
            raise subprocess.CalledProcessError(1, ["kafka-local", "start"], stderr=self.failure)

    def destroy(self) -> None:
        self.calls.append("destroy")


def _makers(*failures: str | None) -> list[_Broker]:
    return [_Broker(port=9000 + n, failure=f) for n, f in enumerate(failures)]


def test_given_a_port_taken_meanwhile_then_it_starts_on_other_ports() -> None:
    brokers = _makers(TAKEN, None)
    made = iter(brokers)

    broker, extra = started_on_free_ports(lambda: (next(made), "listeners"))

    assert (broker.port, extra) == (9001, "listeners")
    assert brokers[0].calls == ["start", "destroy"]  # the failed attempt's folder wiped
    assert brokers[1].calls == ["start"]


def test_given_another_failure_then_it_is_raised_at_once() -> None:
    brokers = _makers("java.lang.OutOfMemoryError", None)
    made = iter(brokers)

    with pytest.raises(subprocess.CalledProcessError):
        started_on_free_ports(lambda: (next(made), None))
    assert brokers[1].calls == []


def test_given_ports_taken_at_every_attempt_then_the_last_failure_is_raised() -> None:
    brokers = _makers(*[TAKEN] * PORT_ATTEMPTS)
    made = iter(brokers)

    with pytest.raises(subprocess.CalledProcessError):
        started_on_free_ports(lambda: (next(made), None))
    assert all(broker.calls == ["start", "destroy"] for broker in brokers)
