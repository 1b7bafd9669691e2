"""Delivers planned notifications: once each, with retries, fallbacks and a record on Kafka.

For each notification: ``notification.requested`` on ``notifications.v1``, the ledger row
``sending``, the provider call, the ledger row ``sent`` (or ``failed``), then
``notification.sent`` (or ``notification.failed`` and the next medium). A notification the ledger
knows as ``announced`` (sent, and ``notification.sent`` acknowledged by Kafka) is skipped when
its event comes again; one it knows only as ``sent`` has its ``notification.sent`` published
again, since the process may have stopped before it did.

Retries: a 4xx-like refusal (``TemporarySendError``) is retried with exponential backoff and full
jitter up to ``max_attempts``; an unreachable provider (``ProviderUnavailable``) is waited for
without limit (nothing else could be sent anyway, and offsets stay uncommitted meanwhile); a
permanent refusal fails at once and the next medium is tried.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2
import structlog
from prometheus_client import Counter

from gateway.dlq.records import unread_record
from gateway.errors import PermanentSendError, ProviderUnavailable, SendError
from gateway.events.dlq import IntakeRejected
from gateway.events.envelope import make_event
from gateway.events.notification import (
    Medium,
    NotificationFailed,
    NotificationRequested,
    NotificationSent,
    Purpose,
)
from gateway.notifier import OutgoingMessage, Sender
from gateway.notifier.feedback_links import FeedbackLinks
from gateway.notifier.ledger import LedgerEntry, NotificationLedger
from gateway.notifier.planner import PlannedNotification, labels
from gateway.notifier.templates import RenderedMessage, TemplateLibrary
from gateway.notifier.tokens import EmailTokens
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.dlq import DlqStore
from gateway.store.patience import until_available

log = structlog.get_logger(__name__)

NOTIFICATIONS = Counter(
    "gateway_notifications_total",
    "Notifications by medium, purpose and outcome",
    ["medium", "purpose", "outcome"],
)
SOURCE = "urn:intake-gateway:notifier"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 1.0
    max_s: float = 300.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_s, self.base_s * 2**attempt))  # noqa: S311


class Dispatcher:
    def __init__(  # noqa: PLR0913 (keyword-only extras past what every dispatcher needs)
        self,
        settings: GatewaySettings,
        senders: Mapping[Medium, Sender],
        ledger: NotificationLedger,
        publisher: KafkaPublisher,
        templates: TemplateLibrary,
        tokens: EmailTokens,
        *,
        feedback: FeedbackLinks | None = None,
        dlq: DlqStore | None = None,
    ) -> None:
        notifier = settings.notifier
        self._dlq = dlq
        self._settings = settings
        self._senders = senders
        self._ledger = ledger
        self._publisher = publisher
        self._templates = templates
        self._tokens = tokens
        self._feedback = feedback
        self._retry = RetryPolicy(
            notifier.max_attempts, notifier.retry_base_s, notifier.retry_max_s
        )
        # This notifier's name on its claims: another process (or this one restarted) is
        # another name, and waits for the claim's lease to run out before taking it over.
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease_s = notifier.claim_lease_s

    async def close(self) -> None:
        for sender in self._senders.values():
            await sender.close()

    async def deliver(self, planned: PlannedNotification) -> None:
        """Send one notification (and its fallbacks if it fails for good)."""
        current: PlannedNotification | None = planned
        while current is not None:
            if await self._deliver_one(current):
                return
            current = self._next(current)

    def _next(self, planned: PlannedNotification) -> PlannedNotification | None:
        following = planned.fallback()
        while following is not None and following.medium not in self._senders:
            following = following.fallback()
        return following

    async def _deliver_one(self, planned: PlannedNotification) -> bool:
        """True once sent (now or before), False when it failed for good."""
        if planned.medium not in self._senders:
            await self._fail(planned, f"no {planned.medium} sender is configured", 1)
            return False
        done = await self._ledger.outcome(planned.notification_id)
        if done is not None and done.status == "announced":
            return True  # sent and recorded on Kafka: a redelivery costs one look-up
        if done is not None and done.status == "sent":
            await self._announce_sent(planned, done.provider_message_id, attempt=1)
            return True
        if done is not None and done.status == "failed":
            return False
        if done is None and not planned.requested_elsewhere:
            await self._publish(self._requested(planned))
        if not await self._claim(planned):
            return await self._after_other_claim(planned)
        return await self._attempt(planned)

    async def _claim(self, planned: PlannedNotification) -> bool:
        """The notification is this notifier's to send (now recorded ``sending``), or not:
        another holds it within its lease, or it was sent or failed meanwhile."""
        entry = self._entry(planned, "sending", values=planned.values)
        return await self._ledger.claim(entry, self._owner, self._lease_s)

    async def _after_other_claim(self, planned: PlannedNotification) -> bool:
        """Another notifier claimed it (a rebalance gave it the same event): wait for its
        outcome, so the event's offset is not committed before the notification is sent, and
        send it here only if that notifier's lease runs out first (it was killed)."""
        log.info("notifier.claimed_elsewhere", notification_id=planned.notification_id)
        while True:
            await asyncio.sleep(min(1.0, self._lease_s / 4))
            done = await self._ledger.outcome(planned.notification_id)
            if done is not None and done.status in ("sent", "announced"):
                return True
            if done is not None and done.status == "failed":
                return False
            if await self._claim(planned):
                return await self._attempt(planned)

    async def _attempt(self, planned: PlannedNotification) -> bool:
        try:
            message = self._message(planned)
        except jinja2.TemplateError as exc:
            await self._fail(planned, f"template error: {exc}", 1)
            return False
        sender = self._senders[planned.medium]
        attempt = 1
        while True:
            try:
                provider_id = await sender.send(message)
            except PermanentSendError as exc:
                await self._fail(planned, str(exc), attempt)
                return False
            except ProviderUnavailable as exc:
                await self._wait(planned, exc, min(attempt, 8))
                continue
            except SendError as exc:
                if attempt >= self._retry.max_attempts:
                    await self._fail(planned, f"gave up after {attempt} tries: {exc}", attempt)
                    return False
                await self._wait(planned, exc, attempt)
                attempt += 1
                continue
            await self._record(planned, "sent", provider_id)
            await self._announce_sent(planned, provider_id, attempt)
            return True

    async def _wait(self, planned: PlannedNotification, error: Exception, attempt: int) -> None:
        delay = self._retry.delay(attempt)
        await self._claim(planned)  # the claim lasts the wait (renewed: it is this owner's)
        log.warning(
            "notifier.retry",
            notification_id=planned.notification_id,
            medium=planned.medium,
            error=str(error),
            attempt=attempt,
            delay_s=round(delay, 2),
        )
        NOTIFICATIONS.labels(planned.medium, planned.purpose, "retried").inc()
        await asyncio.sleep(delay)

    def _message(self, planned: PlannedNotification) -> OutgoingMessage:
        return OutgoingMessage(
            notification_id=planned.notification_id,
            reference=planned.reference,
            recipient=planned.recipient,
            content=self.render(planned),
            in_reply_to=planned.in_reply_to if planned.medium == Medium.EMAIL else None,
            follows=planned.follows if planned.medium == Medium.EMAIL else None,
        )

    def render(self, planned: PlannedNotification) -> RenderedMessage:
        language = self._templates.language_for(planned.language)
        values: dict[str, Any] = {
            "office_name": self._settings.notifier.office_name,
            "link_valid_days": self._settings.notifier.link_valid_days,
            "verify_url": self._verify_url(planned),
            "feedback_url": self._feedback_url(planned),
            "feedback_valid_days": self._settings.tracker.feedback_valid_days,
            **planned.values,
        }
        return self._templates.render(str(planned.purpose), language, labels(values, language))

    def _verify_url(self, planned: PlannedNotification) -> str | None:
        wanted = planned.purpose == Purpose.EMAIL_VERIFICATION or (
            planned.purpose == Purpose.ACKNOWLEDGEMENT and planned.values.get("email_unverified")
        )
        if planned.medium != Medium.EMAIL or not wanted:
            return None
        token = self._tokens.issue(planned.reference, planned.recipient, planned.language)
        base = str(self._settings.public_url).rstrip("/")
        return f"{base}/v1/verify/email?token={token}"

    def _feedback_url(self, planned: PlannedNotification) -> str | None:
        """The satisfaction link of a final notice sent by email or SMS (not printed: a letter's
        reader would have to type it)."""
        wanted = planned.values.get("final") and planned.medium in (Medium.EMAIL, Medium.SMS)
        if self._feedback is None or not wanted:
            return None
        token = self._feedback.issue(planned.reference, planned.language)
        return f"{str(self._settings.public_url).rstrip('/')}/v1/feedback?token={token}"

    async def _record(
        self,
        planned: PlannedNotification,
        status: str,
        provider_id: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        await self._ledger.record(self._entry(planned, status, provider_id, values))

    @staticmethod
    def _entry(
        planned: PlannedNotification,
        status: str,
        provider_id: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        return LedgerEntry(
            planned.notification_id,
            reference=planned.reference,
            purpose=str(planned.purpose),
            medium=str(planned.medium),
            status=status,
            provider_message_id=provider_id,
            recipient=planned.recipient,
            values=values,
        )

    async def _announce_sent(
        self, planned: PlannedNotification, provider_id: str | None, attempt: int
    ) -> None:
        receipt = planned.values.get("receipt_sha256")
        sent = NotificationSent(
            **self._common(planned, attempt),
            sent_at=datetime.now(UTC),
            provider_message_id=provider_id,
            receipt_sha256=receipt if isinstance(receipt, str) else None,
        )
        await self._publish(sent)
        await self._record(planned, "announced")
        NOTIFICATIONS.labels(planned.medium, planned.purpose, "sent").inc()
        log.info(
            "notifier.sent",
            notification_id=planned.notification_id,
            reference=planned.reference,
            medium=planned.medium,
            purpose=planned.purpose,
        )

    async def _fail(self, planned: PlannedNotification, error: str, attempt: int) -> None:
        following = self._next(planned)
        failed = NotificationFailed(
            **self._common(planned, attempt),
            failed_at=datetime.now(UTC),
            permanent=True,
            error=error[:1000],
            next_step=following.medium if following else None,
        )
        await self._record(planned, "failed")
        await self._publish(failed)
        NOTIFICATIONS.labels(planned.medium, planned.purpose, "failed").inc()
        log.warning(
            "notifier.failed",
            notification_id=planned.notification_id,
            reference=planned.reference,
            medium=planned.medium,
            error=error,
            next_step=following.medium if following else None,
        )

    async def bounced(self, planned: PlannedNotification, error: str) -> None:
        """Our email came back: record the failure and send by the next medium."""
        done = await self._ledger.outcome(planned.notification_id)
        if done is None or done.status != "failed":
            await self._fail(planned, error, 1)
        following = self._next(planned)
        if following is not None:
            await self.deliver(following)

    def _requested(self, planned: PlannedNotification) -> NotificationRequested:
        return NotificationRequested(
            **self._common(planned, 1),
            template=str(planned.purpose),
            requested_at=datetime.now(UTC),
        )

    @staticmethod
    def _common(planned: PlannedNotification, attempt: int) -> dict[str, Any]:
        return {
            "notification_id": planned.notification_id,
            "reference": planned.reference,
            "purpose": planned.purpose,
            "medium": planned.medium,
            "recipient": planned.recipient,
            "language": planned.language,
            "attempt": attempt,
        }

    async def dead_letter(self, rejected: IntakeRejected, source_key: str) -> None:
        """Publish a record the notifier cannot read on the DLQ (before its offset is committed:
        if Kafka does not take it, the batch is read again), then keep it in the office's
        dead-letter queue (``dlq list``, to look at and dismiss)."""
        event = make_event(rejected, source_key=source_key, source=SOURCE)
        await self._publisher.publish(event)
        if (dlq := self._dlq) is not None:
            kept = unread_record(event, source_key)
            await until_available("dead-letter record", lambda: dlq.add(kept))

    async def _publish(
        self, data: NotificationRequested | NotificationSent | NotificationFailed
    ) -> None:
        kind = type(data).__name__
        await self._publisher.publish(
            make_event(data, source_key=f"{data.notification_id}\n{kind}", source=SOURCE)
        )
