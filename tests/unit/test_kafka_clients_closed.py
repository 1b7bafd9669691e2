"""Every Kafka client the gateway starts is stopped however its start ends: a cancellation (a
Ctrl-C, a stop of the service, a publish's time bound) while the broker has not answered yet
included. aiokafka reports a client never stopped as an error in the log ("Unclosed
AIOKafkaConsumer", seen in a CI run when ``scripts/dev`` was stopped right after it was ready)
and leaves its connections open.

The broker here is a socket that accepts and never answers: each client waits in its start
until it is cancelled."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from gateway.events.envelope import make_event
from gateway.events.erasure import ComplaintErased
from gateway.kafka_security import group_consumer
from gateway.publisher import KafkaPublisher
from gateway.settings import KafkaSettings
from gateway.store.tracker import TrackerStore
from gateway.tail import tail
from gateway.tracker.rebuild import rebuild
from gateway.tracker.service import TrackerService
from gateway.tracker.timeline import ComplaintFold


@pytest.fixture
async def silent_broker() -> AsyncIterator[KafkaSettings]:
    """A listening socket that accepts connections and never answers a request."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield KafkaSettings(bootstrap=f"127.0.0.1:{port}", request_timeout_s=30)
        for writer in held:
            writer.close()


def tracker_run(settings: KafkaSettings) -> Awaitable[object]:
    unused = cast(Any, None)  # the store, fold and publisher: nothing is read before the start
    consumer = group_consumer(settings, "closed-on-cancel", "tracker")
    return TrackerService(consumer, unused, unused, unused).run()


def tail_run(settings: KafkaSettings) -> Awaitable[object]:
    return tail(settings, "complaints.v1", from_beginning=True, max_events=1)


def rebuild_run(settings: KafkaSettings) -> Awaitable[object]:
    return rebuild(settings, cast(TrackerStore, None), ComplaintFold({}))


async def publish_run(settings: KafkaSettings) -> object:
    publisher = KafkaPublisher(settings)
    try:
        erased = ComplaintErased(reference="RQ-0000-0000-0001", erased_at=datetime.now(UTC))
        return await publisher.publish(make_event(erased, source_key="closed-on-cancel"))
    finally:
        await publisher.close()


RUNS: dict[str, Callable[[KafkaSettings], Awaitable[object]]] = {
    "tracker service": tracker_run,
    "tail": tail_run,
    "tracker rebuild": rebuild_run,
    "publisher": publish_run,
}


@pytest.mark.parametrize("name", RUNS)
async def test_given_the_broker_silent_when_cancelled_during_the_start_then_no_client_is_left_open(
    name: str, silent_broker: KafkaSettings
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        task = asyncio.ensure_future(RUNS[name](silent_broker))
        await asyncio.sleep(0.5)  # the client connected and waits for an answer
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del task
        gc.collect()
    loop.set_exception_handler(None)
    unclosed = [str(w.message) for w in warned if issubclass(w.category, ResourceWarning)]
    assert [message for message in reported if "Unclosed" in message] == []
    assert [message for message in unclosed if "AIOKafka" in message] == []
