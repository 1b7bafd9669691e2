"""Free ports for the tests' servers, and the brokers' start made again when a port was taken
meanwhile."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass, field

import pytest

from tests.support.kafka import (
    PORT_ATTEMPTS,
    LocalBroker,
    _ephemeral_low,
    free_port,
    free_port_pair,
    port_share,
    started_on_free_ports,
)

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


@pytest.mark.parametrize(
    ("environment", "share"),
    [
        ({}, (10_000, 32_768)),
        ({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "4"}, (10_000, 15_692)),
        ({"PYTEST_XDIST_WORKER": "gw3", "PYTEST_XDIST_WORKER_COUNT": "4"}, (27_076, 32_768)),
        ({"PYTEST_XDIST_WORKER": "gw9", "PYTEST_XDIST_WORKER_COUNT": "4"}, (10_000, 32_768)),
    ],
)
def test_given_a_worker_then_its_share_of_ports_is_below_the_ephemeral_range(
    environment: dict[str, str], share: tuple[int, int]
) -> None:
    assert port_share(32_768, environment) == share


def test_given_ports_handed_out_then_none_twice_none_ephemeral_and_each_bindable() -> None:
    ports = [free_port() for _ in range(200)] + [free_port_pair() for _ in range(20)]
    low, high = port_share(_ephemeral_low(), os.environ)

    assert len(set(ports)) == len(ports)
    assert all(low <= port < high - 1 for port in ports)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", ports[-1] + 1))  # a pair's second port is free
