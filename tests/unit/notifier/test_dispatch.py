"""The dispatcher: once each, retries, fallbacks, and every step recorded as an event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.errors import PermanentSendError, ProviderUnavailable, TemporarySendError
from gateway.events.envelope import CloudEvent
from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.ledger import LedgerEntry
from gateway.notifier.planner import PlannedNotification, plan_acknowledgement
from gateway.notifier.templates import TemplateLibrary
from gateway.notifier.tokens import EmailTokens
from gateway.settings import load_settings
from gateway.store.sqlite_ledger import SqliteLedger
from tests.unit.notifier.conftest import ComplaintFactory


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[CloudEvent[Any]] = []

    async def publish(self, event: CloudEvent[Any]) -> None:
        self.events.append(event)

    def types(self) -> list[tuple[str, str]]:
        return [(event.type, str(event.data.medium)) for event in self.events]


class ScriptedSender:
    """Raises the scripted errors in turn, then accepts every message."""

    def __init__(self, medium: Medium, *errors: Exception) -> None:
        self.medium = medium
        self._errors = list(errors)
        self.sent: list[OutgoingMessage] = []
        self.calls = 0

    async def send(self, message: OutgoingMessage) -> str:
        self.calls += 1
        if self._errors:
            raise self._errors.pop(0)
        self.sent.append(message)
        return f"{self.medium}-{len(self.sent)}"

    async def close(self) -> None:
        return None


@pytest.fixture
async def ledger() -> AsyncIterator[SqliteLedger]:
    ledger = SqliteLedger(None)
    yield ledger
    await ledger.close()


def dispatcher(
    ledger: SqliteLedger, publisher: RecordingPublisher, *senders: ScriptedSender
) -> Dispatcher:
    settings = load_settings(
        notifier={"retry_base_s": 0.001, "retry_max_s": 0.002, "max_attempts": 3},
        public_url="https://plaintes.example.org",
    )
    return Dispatcher(
        settings,
        {sender.medium: sender for sender in senders},
        ledger,
        publisher,  # type: ignore[arg-type]
        TemplateLibrary(),
        EmailTokens(Fernet.generate_key()),
    )


def acknowledgement(complaint: ComplaintFactory) -> PlannedNotification:
    plan = plan_acknowledgement(complaint(), datetime.now(UTC), timedelta(days=14))
    assert isinstance(plan, PlannedNotification)
    return plan


async def test_a_notification_is_sent_once_even_when_its_event_comes_again(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher, email = RecordingPublisher(), ScriptedSender(Medium.EMAIL)
    notifier = dispatcher(ledger, publisher, email)
    await notifier.deliver(acknowledgement(complaint))
    await notifier.deliver(acknowledgement(complaint))
    assert len(email.sent) == 1
    message = email.sent[0]
    assert "https://plaintes.example.org/v1/verify/email?token=" in message.content.text
    assert publisher.types() == [
        ("notification.requested", "email"),
        ("notification.sent", "email"),
    ]
    sent = publisher.events[1].data
    assert sent.provider_message_id == "email-1"
    assert sent.receipt_sha256 is not None


async def test_a_notification_another_service_requested_is_not_requested_a_second_time(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    """A new validation link asked for by the web service: its ``notification.requested`` is on
    the topic already, so the notifier publishes only the outcome (one request, one outcome)."""
    publisher, email = RecordingPublisher(), ScriptedSender(Medium.EMAIL)
    planned = replace(acknowledgement(complaint), requested_elsewhere=True)
    await dispatcher(ledger, publisher, email).deliver(planned)
    assert len(email.sent) == 1
    assert publisher.types() == [("notification.sent", "email")]


async def test_a_fallback_of_a_requested_notification_is_announced_as_a_new_one(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    email = ScriptedSender(Medium.EMAIL, PermanentSendError("550 no such user"))
    sms = ScriptedSender(Medium.SMS)
    planned = replace(
        acknowledgement(complaint),
        requested_elsewhere=True,
        fallbacks=((Medium.SMS, "+15145550123"),),
    )
    await dispatcher(ledger, publisher, email, sms).deliver(planned)
    assert publisher.types() == [
        ("notification.failed", "email"),
        ("notification.requested", "sms"),
        ("notification.sent", "sms"),
    ]


async def test_a_send_not_yet_announced_when_the_process_stopped_is_announced_again(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    """The provider took it and the ledger says sent, but ``notification.sent`` may never have
    reached Kafka: the redelivery publishes it (same event id), and sends nothing."""
    publisher, email = RecordingPublisher(), ScriptedSender(Medium.EMAIL)
    planned = acknowledgement(complaint)
    await ledger.record(
        LedgerEntry(
            planned.notification_id, planned.reference, "acknowledgement", "email", "sent", "<id@x>"
        )
    )
    await dispatcher(ledger, publisher, email).deliver(planned)
    assert email.sent == []
    assert publisher.types() == [("notification.sent", "email")]
    assert publisher.events[0].data.provider_message_id == "<id@x>"


async def test_temporary_refusals_are_retried_then_succeed(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    email = ScriptedSender(Medium.EMAIL, TemporarySendError("451 try later"))
    await dispatcher(ledger, publisher, email).deliver(acknowledgement(complaint))
    assert email.calls == 2
    assert len(email.sent) == 1
    assert publisher.events[-1].type == "notification.sent"
    assert publisher.events[-1].data.attempt == 2


async def test_an_unreachable_server_is_waited_for_beyond_the_attempt_limit(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    down = [ProviderUnavailable("connection refused") for _ in range(10)]
    email = ScriptedSender(Medium.EMAIL, *down)
    await dispatcher(ledger, publisher, email).deliver(acknowledgement(complaint))
    assert email.calls == 11
    assert [event.type for event in publisher.events] == [
        "notification.requested",
        "notification.sent",
    ]


async def test_a_permanent_refusal_fails_fast_and_the_next_medium_is_tried(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    email = ScriptedSender(Medium.EMAIL, PermanentSendError("550 no such user"))
    sms = ScriptedSender(Medium.SMS)
    await dispatcher(ledger, publisher, email, sms).deliver(acknowledgement(complaint))
    assert email.calls == 1
    assert [message.recipient for message in sms.sent] == ["+15145550123"]
    assert "PL-HP69-9MYG-AHW6" in sms.sent[0].content.sms
    assert publisher.types() == [
        ("notification.requested", "email"),
        ("notification.failed", "email"),
        ("notification.requested", "sms"),
        ("notification.sent", "sms"),
    ]
    failed = publisher.events[1].data
    assert failed.permanent is True
    assert failed.next_step == Medium.SMS
    assert "550" in failed.error


async def test_too_many_temporary_refusals_count_as_a_failure(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    email = ScriptedSender(Medium.EMAIL, *[TemporarySendError("452") for _ in range(5)])
    await dispatcher(ledger, publisher, email).deliver(acknowledgement(complaint))
    assert email.calls == 3  # max_attempts
    assert publisher.events[-1].type == "notification.failed"
    assert publisher.events[-1].data.next_step is None  # no SMS sender configured here
    outcome = await ledger.outcome(publisher.events[-1].data.notification_id)
    assert outcome is not None
    assert outcome.status == "failed"


async def test_a_bounce_records_the_failure_and_sends_by_the_next_medium(
    complaint: ComplaintFactory, ledger: SqliteLedger
) -> None:
    publisher = RecordingPublisher()
    email, sms = ScriptedSender(Medium.EMAIL), ScriptedSender(Medium.SMS)
    notifier = dispatcher(ledger, publisher, email, sms)
    planned = acknowledgement(complaint)
    await notifier.deliver(planned)
    await notifier.bounced(planned, "the email bounced")
    await notifier.bounced(planned, "the email bounced")  # the bounce event came again
    assert len(email.sent) == 1
    assert len(sms.sent) == 1
    assert [kind for kind, _ in publisher.types()].count("notification.failed") == 1
