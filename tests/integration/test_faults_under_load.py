"""Faults under load, with the gateway run as a user runs it (``run --only http email``).

While signed forms are posted and mail arrives in the IMAP inbox, the broker is stopped and
started again, or the gateway is killed with SIGKILL and started again. The claim checked each
time, counted by event id on ``complaints.v1``:

- every submission answered 202 is on the topic, under the event id its 202 named;
- every submission, however often it was retried (503, connection refused, connection reset),
  has exactly one event id; so has every mailbox message, and every message ends in
  ``Processed``;
- nothing is on the topic that no 202 and no mailbox message accounts for;
- after the SIGKILL (in the middle of the store's batches: many submissions are in flight), the
  raw copy of every submission answered 202 is whole (``GET /v1/objects/{sha256}``, checked).

A record may be on the topic twice under the same event id (at-least-once delivery: Kafka took
it, then the 202 or the IMAP move was lost to the fault, and the retry republished it); the test
prints how often, and ``docs/reliability.md`` reports it. Consumers drop such copies by event id.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.admin import create_topics
from gateway.events import topics
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.support.consumer import TopicReader
from tests.support.dovecot import PASSWORD, USER, Dovecot, append, count, simple_mail
from tests.support.http import SECRETS, GatewayProcess
from tests.support.kafka import LocalBroker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.fault,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

FORM_URL = "/v1/webhooks/forms/contact-form"
SUBMISSIONS = 150
MAILS = 60
RETRY_PAUSE_S = 0.3
CASE_SYSTEM = "case-system-token"


@dataclass
class FormLoad:
    """A form builder posting ``count`` signed submissions at a steady pace, each retried with
    the same Idempotency-Key and body until it gets its 202 (as the contract asks of callers)."""

    url: str
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)

    async def run(self, count: int, per_second: float) -> None:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            tasks = []
            for number in range(count):
                tasks.append(asyncio.create_task(self._submit(client, number)))
                await asyncio.sleep(1 / per_second)
            await asyncio.gather(*tasks)

    async def _submit(self, client: httpx.AsyncClient, number: int) -> None:
        key = str(uuid.uuid4())
        body = json.dumps(
            {
                "name": f"Personne {number}",
                "email": f"personne{number}@example.org",
                "subject": "Plainte",
                "body": f"Ma demande numéro {number} est sans réponse depuis deux mois.",
            }
        ).encode()
        while True:
            headers = {
                "content-type": "application/json",
                "Idempotency-Key": key,
                "X-Gateway-Signature": sign(body, SECRETS["contact-form"][0]),
            }
            try:
                answer = await client.post(FORM_URL, content=body, headers=headers)
            except httpx.TransportError as exc:
                self.answers[type(exc).__name__] += 1
            else:
                self.answers[str(answer.status_code)] += 1
                if answer.status_code == 202:
                    self.accepted[key] = answer.json()
                    self.bodies[key] = body
                    return
                assert answer.status_code in (429, 503), answer.text
            await asyncio.sleep(RETRY_PAUSE_S)


async def mail_over_time(server: Dovecot, count: int, per_second: float) -> set[str]:
    """Deliver ``count`` complaints to the inbox, one at a time; returns their Message-IDs."""
    ids = set()
    for number in range(count):
        message_id = f"load-{number}-{uuid.uuid4().hex[:8]}@example.org"
        ids.add(message_id)
        mail = simple_mail(f"<{message_id}>", "Plainte", f"Courriel {number} resté sans suite.")
        await append(server, mail)
        await asyncio.sleep(1 / per_second)
    return ids


async def until_all_processed(server: Dovecot, expected: int, timeout_s: float = 120) -> None:
    """Poll the mailbox (another process's state) until ``expected`` messages are processed."""
    for _ in range(int(timeout_s * 2)):
        if await count(server, "Processed") >= expected:
            assert await count(server, "INBOX") == 0
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{expected} messages were not all processed in {timeout_s} s")


async def until_accepted(load: FormLoad, at_least: int, timeout_s: float = 60) -> None:
    for _ in range(int(timeout_s * 20)):
        if len(load.accepted) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} submissions accepted in {timeout_s} s")


@dataclass(frozen=True)
class Tally:
    """What ``complaints.v1`` holds, by source: source id -> the event ids seen for it."""

    events_by_source: dict[str, set[str]]
    records: int

    @property
    def copies(self) -> int:
        """Records beyond the first of their event id (redeliveries)."""
        return self.records - sum(len(ids) for ids in self.events_by_source.values())


async def tally(bootstrap: str) -> Tally:
    reader = TopicReader(bootstrap, topics.COMPLAINTS)
    await reader.mark_beginning()
    records = await reader.read_to_end()
    events: dict[str, set[str]] = collections.defaultdict(set)
    for record in records:
        event = json.loads(record.value)
        events[event["data"]["source_message"]["id"].strip("<>")].add(event["id"])
    return Tally(dict(events), len(records))


def assert_each_input_once(load: FormLoad, mail_ids: set[str], found: Tally) -> None:
    print(f"answers seen by the form client: {dict(load.answers)}")
    print(f"records on complaints.v1: {found.records}, copies of an event id: {found.copies}")
    assert len(load.accepted) == SUBMISSIONS
    for key, answer in load.accepted.items():
        assert found.events_by_source.get(key) == {answer["event_id"]}, key
    for message_id in mail_ids:
        assert len(found.events_by_source.get(message_id, set())) == 1, message_id
    assert set(found.events_by_source) == set(load.accepted) | mail_ids


def gateway_for(broker: LocalBroker, server: Dovecot, tmp_path: Path) -> GatewayProcess:
    return GatewayProcess(
        broker.bootstrap,
        tmp_path / "data",
        services=("http", "email"),
        log=tmp_path / "gateway.log",
        GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS),
        GATEWAY_CONSUMER_TOKENS=json.dumps({"case-system": CASE_SYSTEM}),
        GATEWAY_HTTP_RATE_PER_CLIENT_PER_MINUTE="1000000",
        GATEWAY_IMAP_HOST="127.0.0.1",
        GATEWAY_IMAP_PORT=str(server.port),
        GATEWAY_IMAP_USER=USER,
        GATEWAY_IMAP_PASSWORD=PASSWORD,
        GATEWAY_IMAP_TLS="false",
        GATEWAY_KAFKA_PUBLISH_TIMEOUT_S="3",
        GATEWAY_KAFKA_REQUEST_TIMEOUT_S="2",
    )


async def under_load(
    broker: LocalBroker,
    server: Dovecot,
    tmp_path: Path,
    fault: Callable[[GatewayProcess], Awaitable[None]],
    rates: tuple[float, float],
    then: Callable[[FormLoad], Awaitable[None]] | None = None,
) -> tuple[FormLoad, set[str]]:
    """Forms and mail at ``rates`` (per second) into a gateway process; ``fault`` strikes once
    a quarter of the forms are in; returns once every form has its 202 and every mail is
    processed (and ``then`` checked the load against the gateway, still running)."""
    await create_topics(KafkaSettings(bootstrap=broker.bootstrap))
    gateway = gateway_for(broker, server, tmp_path)
    await asyncio.to_thread(gateway.start)
    try:
        load = FormLoad(gateway.url)
        forms = asyncio.create_task(load.run(SUBMISSIONS, per_second=rates[0]))
        mails = asyncio.create_task(mail_over_time(server, MAILS, per_second=rates[1]))
        await until_accepted(load, SUBMISSIONS // 4)
        await fault(gateway)
        await forms
        mail_ids = await mails
        await until_all_processed(server, MAILS)
        if then is not None:
            await then(load)
    finally:
        gateway.stop()
    return load, mail_ids


async def raw_copies_whole(load: FormLoad) -> None:
    """Every 202'd submission's raw copy, read back as a case system reads it (checked against
    its hash by the store), is the body that was posted."""
    headers = {"Authorization": f"Bearer {CASE_SYSTEM}"}
    async with httpx.AsyncClient(base_url=load.url, headers=headers, timeout=30) as client:
        for key, body in load.bodies.items():
            answer = await client.get(f"/v1/objects/{hashlib.sha256(body).hexdigest()}")
            assert answer.status_code == 200, (key, answer.status_code)
            assert answer.content == body, key


async def test_broker_stopped_and_restarted_under_form_and_mail_load(
    private_broker: LocalBroker, dovecot: Dovecot, tmp_path: Path
) -> None:
    async def restart_broker(_gateway: GatewayProcess) -> None:
        await asyncio.to_thread(private_broker.stop)
        await asyncio.sleep(2)  # the load goes on against a missing broker
        await asyncio.to_thread(private_broker.start)

    load, mail_ids = await under_load(
        private_broker, dovecot, tmp_path, restart_broker, rates=(20, 8)
    )
    assert load.answers["503"] > 0, "the broker came back before any request noticed"
    assert_each_input_once(load, mail_ids, await tally(private_broker.bootstrap))


async def test_gateway_killed_and_restarted_under_form_and_mail_load(
    private_broker: LocalBroker, dovecot: Dovecot, tmp_path: Path
) -> None:
    async def kill_and_restart(gateway: GatewayProcess) -> None:
        await asyncio.to_thread(gateway.kill)
        await asyncio.sleep(1)
        await asyncio.to_thread(gateway.start)

    load, mail_ids = await under_load(
        private_broker, dovecot, tmp_path, kill_and_restart, rates=(25, 10), then=raw_copies_whole
    )
    refused = sum(n for answer, n in load.answers.items() if not answer.isdigit())
    assert refused > 0, "no request met the dead gateway"
    assert_each_input_once(load, mail_ids, await tally(private_broker.bootstrap))
