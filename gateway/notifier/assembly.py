"""Builds the notifier from settings: a sender per medium that is configured, the templates,
the ledger, the link tokens and its Kafka consumer."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from gateway.components import Components
from gateway.errors import ConfigurationError
from gateway.events.notification import Medium
from gateway.normalizers.due import load_policies
from gateway.notifier import Sender
from gateway.notifier.dispatch import Dispatcher
from gateway.notifier.feedback_links import FeedbackLinks
from gateway.notifier.final_answer import FinalAnswers
from gateway.notifier.letters import LetterPrinter
from gateway.notifier.outbox import FolderOutbox
from gateway.notifier.planner import AcknowledgementRule
from gateway.notifier.service import NotifierService, notifier_consumer
from gateway.notifier.smtp import SmtpSender
from gateway.notifier.templates import TemplateLibrary
from gateway.notifier.twilio import TwilioSmsSender
from gateway.settings import GatewaySettings
from gateway.tracker.recourse import RecourseBook


def senders_for(settings: GatewaySettings, outbox: bool = False) -> dict[Medium, Sender]:
    """SMTP and Twilio when configured; a folder instead when ``outbox`` (dev) and they are not."""
    senders: dict[Medium, Sender] = {Medium.LETTER: LetterPrinter(settings.data_dir)}
    folder = settings.data_dir / "outbox"
    if settings.smtp.host:
        senders[Medium.EMAIL] = SmtpSender(settings.smtp)
    elif outbox:
        sender = settings.smtp.from_ or "complaints@localhost"
        senders[Medium.EMAIL] = FolderOutbox(folder, Medium.EMAIL, sender)
    if settings.twilio.account_sid and settings.twilio.from_:
        senders[Medium.SMS] = TwilioSmsSender(settings.twilio)
    elif outbox:
        senders[Medium.SMS] = FolderOutbox(folder, Medium.SMS, "")
    if Medium.EMAIL not in senders and Medium.SMS not in senders:
        msg = "GATEWAY_SMTP_HOST: the notifier needs an SMTP server or a Twilio account"
        raise ConfigurationError(msg)
    return senders


def notifier_service(components: Components, outbox: bool = False) -> NotifierService:
    settings = components.settings
    notifier = settings.notifier
    templates = TemplateLibrary(notifier.templates, notifier.default_language)
    templates.check()  # a broken template stops start-up, named
    dispatcher = Dispatcher(
        settings,
        senders_for(settings, outbox),
        components.ledger,
        components.publisher,
        templates,
        components.tokens,
        feedback=FeedbackLinks(components.tokens.link_key, settings.tracker.feedback_valid_days),
        dlq=components.backend.dlq,
    )
    policies = load_policies(settings.normalizer.due_policies_file)
    zones = {name: ZoneInfo(policy.timezone) for name, policy in policies.items()}
    consumer = notifier_consumer(settings.kafka, notifier.group_id)
    return NotifierService(
        consumer,
        dispatcher,
        components.ledger,
        concurrency=notifier.concurrency,
        acknowledgements=AcknowledgementRule(
            max_age=timedelta(days=notifier.max_age_days),
            zones=zones,
            default_zone=zones.get(settings.normalizer.due_policy, UTC),
        ),
        batch_size=notifier.batch_size,
        final_answers=FinalAnswers(
            RecourseBook.load(settings.tracker.recourse_file),
            components.backend.tracker,
            settings.normalizer.due_policy,
        ),
    )
