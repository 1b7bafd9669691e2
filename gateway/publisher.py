"""The only intake code that touches Kafka: publishes CloudEvents and waits for the broker's ack.

Producer settings: ``acks=all`` and the idempotent producer (no duplicates or reordering from the
producer's own retries), key = the complaint's reference (DLQ: the channel), value = the
CloudEvent in structured JSON mode with the header ``content-type: application/cloudevents+json``.

``publish()`` returns only once Kafka acknowledged the event. A bounded number of events may
await acknowledgement at once (``GATEWAY_KAFKA_MAX_IN_FLIGHT``); further callers wait for a
place (back-pressure, no unbounded buffer). When the broker cannot be reached or does not answer
in time (``GATEWAY_KAFKA_REQUEST_TIMEOUT_S``), callers get ``KafkaUnavailable``: the web channel
answers 503, the mail channel leaves the message unflagged and retries. An event that timed out
may still reach Kafka later; a retry then writes it again with the same CloudEvent ``id``, which
is how consumers recognise the repeat. Only an event Kafka will never take (too large, malformed)
gives ``EventRejected``; every other failure is ``KafkaUnavailable``, so that no input is
quarantined for a fault of the broker.

A failed publish also retires the producer. The idempotent producer numbers its batches per
partition; a batch lost to an outage leaves a gap that the broker refuses for good
(``OutOfOrderSequenceNumber`` on every later batch: found by the fault tests, the gateway could
no longer publish after a broker restart). aiokafka does not renumber (the Java client bumps the
epoch), so the next publish starts a new producer, which gets a new producer id; the retired one
still delivers or expires what it holds, in the background.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from prometheus_client import Counter

from gateway.deadlines import DeadlineExceeded, DeadlineWatch
from gateway.errors import EventRejected, KafkaUnavailable, PublishError
from gateway.events import topics
from gateway.events.envelope import CONTENT_TYPE, SPEC_BY_TYPE, CloudEvent
from gateway.kafka_security import client_security, start_or_stop
from gateway.metrics import (
    EVENTS_PUBLISHED,
    PRODUCER_RETIREMENTS,
    PUBLISH_FAILURES,
    PUBLISH_SECONDS,
)
from gateway.settings import KafkaSettings

log = structlog.get_logger(__name__)

HEADERS = [("content-type", CONTENT_TYPE.encode())]

# Kafka will never take this event, however often it is sent: the input is at fault.
_REFUSALS = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidMessageError,
    CorruptRecordException,
    InvalidTimestampError,
    UnsupportedForMessageFormatError,
    PolicyViolationError,
)


@dataclass(frozen=True)
class Acknowledgement:
    """Where Kafka stored an event."""

    topic: str
    partition: int
    offset: int


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """The aiokafka producer options the gateway uses (shared with the benchmark baseline)."""
    return {
        "bootstrap_servers": settings.bootstrap,
        "client_id": settings.client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.linger_ms,
        # One batch per partition is in flight with the idempotent producer; a batch of 512 KiB
        # holds ~250 typical complaints, so concurrent publishers rarely wait for a drain.
        "max_batch_size": settings.max_batch_bytes,
        "request_timeout_ms": int(settings.request_timeout_s * 1000),
        "retry_backoff_ms": 200,
        **client_security(settings),
    }


def route(event: CloudEvent[Any]) -> tuple[str, str]:
    """Topic and key of an event: by its type; key = reference, or channel for the DLQ."""
    spec = SPEC_BY_TYPE[event.type]
    if spec.topic == topics.DLQ:
        return spec.topic, str(event.data.channel)
    return spec.topic, event.subject


def _map_kafka_error(exc: Exception) -> PublishError:
    """EventRejected for an event Kafka will never take, else KafkaUnavailable (retry later):
    aiokafka calls an expired batch or an out-of-order sequence "not retriable", yet the same
    event goes through once the broker and a new producer are back."""
    if isinstance(exc, _REFUSALS):
        return EventRejected(f"Kafka refused the event: {type(exc).__name__}: {exc}")
    return KafkaUnavailable(f"Kafka unavailable: {type(exc).__name__}: {exc}")


class KafkaPublisher:
    """Publishes events to Kafka. Use as an async context manager.

    Starting does not require the broker: if it is down, the producer is (re)started on the next
    ``publish()``, so a gateway started before its broker recovers by itself.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self._counters: dict[tuple[str, str], Counter] = {}
        self._deadlines = DeadlineWatch(settings.publish_timeout_s)
        self._retiring: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        try:
            await self._ensure_started()
        except KafkaUnavailable as exc:
            log.warning("kafka.unavailable_at_start", error=str(exc))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush what is in flight and stop the producer (bounded: Kafka may be down)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), timeout=self._settings.publish_timeout_s)
            except TimeoutError:
                log.warning("kafka.close_timed_out", unsent="events not acknowledged are lost")
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=self._settings.publish_timeout_s)
        await self._deadlines.close()

    async def publish(self, event: CloudEvent[Any]) -> Acknowledgement:
        """Send one event and wait until Kafka acknowledged it (acks=all).

        Bounded in time: connecting and waiting for the acknowledgement each take at most
        ``publish_timeout_s``; queueing into aiokafka's buffer at most ``request_timeout_s``.
        """
        topic, key = route(event)
        value = event.__pydantic_serializer__.to_json(event)  # bytes, no str round trip
        started = time.perf_counter()
        async with self._in_flight:
            producer = self._producer or await self._start_within_timeout()
            try:
                delivery = await producer.send(
                    topic, value=value, key=key.encode(), headers=HEADERS
                )
                with self._deadlines.deadline():
                    metadata = await delivery
            except DeadlineExceeded:
                PUBLISH_FAILURES.labels(topic, "timeout").inc()
                self._retire(producer)
                msg = f"Kafka did not acknowledge within {self._settings.publish_timeout_s}s"
                raise KafkaUnavailable(msg) from None
            except KafkaError as exc:
                PUBLISH_FAILURES.labels(topic, type(exc).__name__).inc()
                self._retire(producer)
                raise _map_kafka_error(exc) from exc
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        self._published_counter(topic, event.type).inc()
        return Acknowledgement(metadata.topic, metadata.partition, metadata.offset)

    def _published_counter(self, topic: str, event_type: str) -> Counter:
        counter = self._counters.get((topic, event_type))
        if counter is None:
            counter = self._counters[topic, event_type] = EVENTS_PUBLISHED.labels(topic, event_type)
        return counter

    def _retire(self, producer: AIOKafkaProducer) -> None:
        """After a failed publish, the next one uses a new producer (see the module's note);
        ``producer`` is stopped in the background once it delivered or expired what it holds."""
        if self._producer is not producer:
            return  # another failed publish retired it already
        self._producer = None
        PRODUCER_RETIREMENTS.inc()
        log.warning("kafka.producer_retired", reason="a publish failed; a new producer follows")
        task = asyncio.create_task(self._stop_retired(producer))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _stop_retired(self, producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()  # bounded by aiokafka's own request timeout per batch
        except (KafkaError, OSError) as exc:
            log.warning("kafka.retired_producer_stop_failed", error=str(exc))

    async def _start_within_timeout(self) -> AIOKafkaProducer:
        try:
            async with asyncio.timeout(self._settings.publish_timeout_s):
                return await self._ensure_started()
        except TimeoutError:
            msg = f"Kafka at {self._settings.bootstrap} did not answer within "
            raise KafkaUnavailable(msg + f"{self._settings.publish_timeout_s}s") from None

    async def is_ready(self) -> bool:
        """True when the broker answers (used by ``GET /readyz``)."""
        try:
            async with asyncio.timeout(self._settings.request_timeout_s):
                producer = await self._ensure_started()
                await producer.client.fetch_all_metadata()
        except (TimeoutError, PublishError, KafkaError):
            return False
        return True

    async def _ensure_started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._start_lock:
            if self._producer is None:
                self._producer = await self._start_producer()
            return self._producer

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**producer_options(self._settings))
        await start_or_stop(producer, self._settings.bootstrap)
        log.info("kafka.producer_started", bootstrap=self._settings.bootstrap)
        return producer
