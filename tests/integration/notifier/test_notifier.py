"""The notifier on a real broker, a real SMTP server and Prism serving Twilio's specs."""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.admin import create_topics
from gateway.components import Components
from gateway.events import topics
from gateway.events.complaint import DocumentAdded, Flag, Status, StatusChanged
from gateway.events.envelope import CloudEvent, make_event, parse_event
from gateway.events.notification import Medium, NotificationRequested, Purpose
from gateway.notifier.planner import receipt_sha256
from gateway.settings import KafkaSettings
from tests.support.consumer import TopicReader
from tests.support.http import running_gateway
from tests.support.kafka import LocalBroker
from tests.support.notifier import (
    complaint_event,
    notifier_settings,
    running_notifier,
    start_group_at_end,
)
from tests.support.prism import TwilioMock
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

LINK = re.compile(r"https://plaintes\.example\.org(/v1/verify/email\?token=[A-Za-z0-9_\-=]+)")


async def notification_events(reader: TopicReader, count: int) -> list[tuple[str, str, str]]:
    records = await reader.read(count, timeout_s=30)
    events = [parse_event(record.value) for record in records]
    return [(event.type, str(event.data.medium), event.data.reference) for event in events]


@dataclass(frozen=True)
class Outage:
    """A server the notifier needs, stopped once ``after`` mails went out, started again after
    ``down_s``."""

    stop: Callable[[], None]
    start: Callable[[], None]
    after: int
    down_s: float

    async def mid_batch(
        self,
        components: Components,
        smtp: SmtpServer,
        events: list[CloudEvent[Any]],
        *,
        back_within_s: float,
        settle_s: float,
    ) -> None:
        """Publish ``events``, cause the outage, and wait for a mail per event, then
        ``settle_s`` more (anything sent twice would arrive then). A failure says how long each
        step took (a broker stopping and starting again on a loaded machine takes its time)."""
        steps: list[str] = []
        clock = time.monotonic()

        def took(step: str) -> None:
            nonlocal clock
            steps.append(f"{step} {time.monotonic() - clock:.1f} s")
            clock = time.monotonic()

        await asyncio.gather(*(components.publisher.publish(event) for event in events))
        await smtp.wait_for(self.after)
        took("first mails")
        await asyncio.to_thread(self.stop)
        took("stop")
        assert len(smtp.messages) < len(events), "the outage came too late to test"
        await asyncio.sleep(self.down_s)
        await asyncio.to_thread(self.start)
        took("down and start")
        try:
            await smtp.wait_for(len(events), timeout_s=back_within_s)
        except AssertionError as exc:
            took("mails after the start")
            raise AssertionError(f"{exc} ({', '.join(steps)})") from exc
        await asyncio.sleep(settle_s)


async def test_given_a_web_complaint_then_one_acknowledgement_email_with_receipt_and_link(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await reader.mark()
    event = complaint_event()
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        [mail] = await smtp_server.wait_for(1)
        records = await reader.read(2)
    reference = event.subject
    assert mail["To"] == "marie@example.org"
    assert reference in mail["Subject"]
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].strip().startswith(f"<{reference}.")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "27 novembre 2026" in text
    assert "23 décembre 2026" in text
    assert receipt_sha256(event) in text
    assert LINK.search(text)
    assert LINK.search(html)
    sent = [parse_event(record.value) for record in records]
    assert [e.type for e in sent] == ["notification.requested", "notification.sent"]
    assert sent[1].data.receipt_sha256 == receipt_sha256(event)
    assert sent[1].data.provider_message_id == mail["Message-ID"].strip()
    assert {record.key for record in records} == {reference.encode()}


async def test_given_the_same_events_read_again_then_nothing_is_sent_twice(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    first = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    events = [complaint_event() for _ in range(5)]
    async with running_notifier(first) as components:
        for event in events:
            await components.publisher.publish(event)
        await smtp_server.wait_for(5)
    # a new consumer group from before those events, with the same ledger: a full redelivery
    again = first.model_copy(update={"notifier": first.notifier.model_copy()})
    again.notifier.group_id = first.notifier.group_id + "-again"
    await start_group_at_end(kafka_settings.bootstrap, again.notifier.group_id)
    async with running_notifier(again) as components:
        for event in events:
            await components.publisher.publish(event)  # same ids: what a redelivery looks like
        await components.publisher.publish(complaint_event())  # and one new complaint
        await smtp_server.wait_for(6)
        with pytest.raises(AssertionError):
            await smtp_server.wait_for(7, timeout_s=3)
    references = [mail["X-Gateway-Reference"] for mail in smtp_server.messages]
    assert len(set(references)) == 6


async def test_given_the_link_clicked_then_the_address_is_verified_once(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    complaints = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    event = complaint_event()
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        [mail] = await smtp_server.wait_for(1)
    found = LINK.search(mail.get_body(("plain",)).get_content())
    assert found is not None
    await complaints.mark()
    async with running_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as client:
        first = await client.get(found.group(1))
        second = await client.get(found.group(1))
        forged = await client.get(found.group(1)[:-4] + "AAAA")
    assert first.status_code == 200
    assert event.subject in first.text
    assert second.status_code == 410
    assert event.subject in second.text  # the address is confirmed: said, nothing to renew
    assert 'action="/v1/verify/email/renew' not in second.text
    assert forged.status_code == 400
    verified = [parse_event(record.value) for record in await complaints.read(1)]
    assert [(e.type, e.data.value, e.data.method) for e in verified] == [
        ("complaint.contact_verified", "marie@example.org", "email_link")
    ]


async def test_given_a_status_change_then_the_person_is_told(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    event = complaint_event()
    change = StatusChanged(
        reference=event.subject,
        status=Status.TRANSFERRED,
        changed_at=event.time,
        transferred_to="Collège des médecins du Québec",
        message="Votre plainte relève du Collège.",
    )
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        await components.publisher.publish(make_event(change, source_key="case:1:" + event.id))
        acknowledgement, update = await smtp_server.wait_for(2)
    assert event.subject in acknowledgement["Subject"]
    assert "transmis à l'organisme compétent" in update["Subject"]
    # in the acknowledgement's thread of the person's mailbox, though it answers no mail of theirs
    assert update["In-Reply-To"] == update["References"] == acknowledgement["Message-ID"]
    assert update["Auto-Submitted"] == "auto-generated"
    body = update.get_body(("plain",)).get_content()
    assert "Collège des médecins du Québec" in body
    assert "Votre plainte relève du Collège." in body


async def test_given_smtp_down_for_a_while_then_mails_go_out_when_it_is_back_once_each(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    events = [complaint_event() for _ in range(5)]
    smtp_server.stop()
    async with running_notifier(settings) as components:
        for event in events:
            await components.publisher.publish(event)
        await asyncio.sleep(3)  # the notifier retries against a closed port meanwhile
        assert smtp_server.messages == []
        smtp_server.start()
        await smtp_server.wait_for(5)
        await asyncio.sleep(1)
    references = sorted(mail["X-Gateway-Reference"] for mail in smtp_server.messages)
    assert references == sorted(event.subject for event in events)


@pytest.mark.fault
async def test_given_smtp_drops_its_connections_mid_batch_then_every_mail_goes_out(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """The server goes away under the notifier's open connections (restart on the same port):
    the pool reconnects; every complaint gets its mail; a mail the server took just before the
    drop may come twice, then with the same Message-ID (at-least-once, as SMTP allows)."""
    smtp_server.sink.delay_s = 0.02
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    events = [complaint_event() for _ in range(60)]
    async with running_notifier(settings) as components:
        # the restart on the same port drops every open session
        outage = Outage(smtp_server.stop, smtp_server.start, after=15, down_s=1)
        await outage.mid_batch(components, smtp_server, events, back_within_s=60, settle_s=1)
    by_reference: dict[str, set[str]] = {}
    for mail in smtp_server.messages:
        by_reference.setdefault(mail["X-Gateway-Reference"], set()).add(mail["Message-ID"])
    assert set(by_reference) == {event.subject for event in events}
    assert all(len(ids) == 1 for ids in by_reference.values())


@pytest.mark.fault
@pytest.mark.slow
@pytest.mark.timeout(300)  # a broker's stop (up to 30 s) and start on a loaded machine, then 120 s
async def test_given_the_broker_stops_mid_batch_then_after_it_returns_each_mail_goes_out_once(
    private_broker: LocalBroker, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Kafka cannot take the notifier's events for a while: the batches under way end, nothing
    more is committed, the consumer reads again from the last commit once the broker is back,
    and the ledger keeps a mail already sent from going twice (found: the service stopped)."""
    kafka = KafkaSettings(
        bootstrap=private_broker.bootstrap, publish_timeout_s=3.0, request_timeout_s=2.0
    )
    await create_topics(kafka)
    smtp_server.sink.delay_s = 0.05
    settings = await notifier_settings(kafka, tmp_path, smtp=smtp_server.settings())
    events = [complaint_event() for _ in range(60)]
    async with running_notifier(settings) as components:
        # down long enough for the notifier's events to time out
        outage = Outage(private_broker.stop, private_broker.start, after=10, down_s=5)
        await outage.mid_batch(components, smtp_server, events, back_within_s=120, settle_s=2)
    mails = collections.Counter(mail["X-Gateway-Reference"] for mail in smtp_server.messages)
    assert set(mails) == {event.subject for event in events}
    assert max(mails.values()) == 1


def email_failed_for_good_then_sms(records: list[Any]) -> Any:
    """The notifications of a complaint whose email failed for good and whose SMS went out;
    the email's failure."""
    steps = [parse_event(record.value) for record in records]
    assert [(e.type, str(e.data.medium)) for e in steps] == [
        ("notification.requested", "email"),
        ("notification.failed", "email"),
        ("notification.requested", "sms"),
        ("notification.sent", "sms"),
    ]
    assert steps[1].data.permanent is True
    return steps[1].data


async def test_given_only_a_phone_then_the_acknowledgement_is_an_sms_twilio_accepts(
    kafka_settings: KafkaSettings, twilio: TwilioMock, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, twilio=twilio.settings())
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await reader.mark()
    event = complaint_event(email=None, phone="+15145550199")
    before = len(twilio.requests("/Messages.json"))
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        records = await reader.read(2)
    sent = [parse_event(record.value) for record in records]
    assert [(e.type, str(e.data.medium)) for e in sent] == [
        ("notification.requested", "sms"),
        ("notification.sent", "sms"),
    ]
    assert sent[1].data.provider_message_id.startswith("SM")
    assert len(twilio.requests("/Messages.json")) == before + 1


async def test_given_a_refused_address_then_the_failure_is_recorded_and_an_sms_goes_out(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, twilio: TwilioMock, tmp_path: Path
) -> None:
    smtp_server.sink.refuse.add("nobody@example.org")
    settings = await notifier_settings(
        kafka_settings, tmp_path, smtp=smtp_server.settings(), twilio=twilio.settings()
    )
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await reader.mark()
    event = complaint_event(email="nobody@example.org", phone="+15145550199")
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        records = await reader.read(4)
    failure = email_failed_for_good_then_sms(records)
    assert "550" in failure.error
    assert failure.next_step == "sms"


INTERNATIONAL = "chloé.côté@example.org"  # RFC 6531: the mailbox itself is not ASCII


async def test_given_an_address_not_in_ascii_then_it_is_mailed_with_smtputf8(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    server = SmtpServer(smtputf8=True)
    server.start()
    try:
        settings = await notifier_settings(kafka_settings, tmp_path, smtp=server.settings())
        event = complaint_event(email=INTERNATIONAL)
        async with running_notifier(settings) as components:
            await components.publisher.publish(event)
            [mail] = await server.wait_for(1)
    finally:
        server.stop()
    assert server.sink.received[0].recipients == [INTERNATIONAL]
    assert mail["To"] == INTERNATIONAL  # UTF-8 as it is (RFC 6532), not an encoded word
    assert event.subject in mail["Subject"]


async def test_given_an_address_not_in_ascii_and_a_server_without_smtputf8_then_an_sms(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, twilio: TwilioMock, tmp_path: Path
) -> None:
    """The notifier does not stop on an address its server cannot carry: a permanent failure,
    and the person is reached the next way (it stopped the whole gateway: found by bench/e2e)."""
    settings = await notifier_settings(
        kafka_settings, tmp_path, smtp=smtp_server.settings(), twilio=twilio.settings()
    )
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    await reader.mark()
    event = complaint_event(email=INTERNATIONAL, phone="+15145550199")
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        records = await reader.read(4)
        healthy = complaint_event()  # the next complaint is served as usual
        await components.publisher.publish(healthy)
        [mail] = await smtp_server.wait_for(1)
    failure = email_failed_for_good_then_sms(records)
    assert "SMTPUTF8" in failure.error
    assert healthy.subject in mail["Subject"]


async def test_given_a_bounce_of_our_email_then_a_letter_is_printed(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    reader = TopicReader(kafka_settings.bootstrap, topics.NOTIFICATIONS)
    event = complaint_event(postal_address="123 rue Principale\nMontréal QC H2X 1Y4")
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        [mail] = await smtp_server.wait_for(1)
        await reader.mark()
        bounce = DocumentAdded(
            reference=event.subject,
            channel="email",
            received_at=event.time,
            body="Delivery to the following recipient failed permanently",
            source_message={"id": "<dsn-1@mx.example.org>"},
            flags=[Flag.BOUNCE],
        )
        await components.publisher.publish(make_event(bounce, source_key="email:<dsn-1>"))
        records = await reader.read(3)
    steps = [parse_event(record.value) for record in records]
    assert [(e.type, str(e.data.medium)) for e in steps] == [
        ("notification.failed", "email"),
        ("notification.requested", "letter"),
        ("notification.sent", "letter"),
    ]
    letter = Path(steps[2].data.provider_message_id)
    assert letter.read_bytes().startswith(b"%PDF-")
    assert letter.is_relative_to(tmp_path / "letters")
    assert mail["X-Gateway-Reference"] == event.subject


async def test_given_a_new_link_requested_then_a_verification_email_goes_out_once(
    kafka_settings: KafkaSettings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """The "send me a new link" page publishes ``notification.requested``; the notifier sends."""
    settings = await notifier_settings(kafka_settings, tmp_path, smtp=smtp_server.settings())
    request = NotificationRequested(
        notification_id=str(uuid.uuid4()),
        reference="PL-HP69-9MYG-AHW6",
        purpose=Purpose.EMAIL_VERIFICATION,
        medium=Medium.EMAIL,
        recipient="marie@example.org",
        language="en",
        template="email_verification",
        requested_at=datetime.now(UTC),
    )
    event = make_event(request, source_key=f"renew:{request.notification_id}")
    async with running_notifier(settings) as components:
        await components.publisher.publish(event)
        await components.publisher.publish(event)
        [mail] = await smtp_server.wait_for(1)
        with pytest.raises(AssertionError):
            await smtp_server.wait_for(2, timeout_s=2)
    assert mail["Subject"].startswith("Confirm your address")
    assert LINK.search(mail.get_body(("plain",)).get_content())
