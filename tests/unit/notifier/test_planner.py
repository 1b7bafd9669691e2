"""What the notifier decides to send for each event (pure decisions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.events.complaint import Status, StatusChanged
from gateway.events.envelope import make_event
from gateway.events.notification import Medium, Purpose
from gateway.notifier.ledger import Contact
from gateway.notifier.planner import (
    AcknowledgementRule,
    PlannedNotification,
    Skipped,
    labels,
    plan_acknowledgement,
    plan_status_update,
    receipt_sha256,
)
from gateway.notifier.templates import TemplateLibrary
from tests.unit.notifier.conftest import ComplaintFactory

NOW = datetime.now(UTC)
TWO_WEEKS = timedelta(days=14)


def test_given_an_email_the_acknowledgement_goes_by_email_then_sms_then_letter(
    complaint: ComplaintFactory,
) -> None:
    plan = plan_acknowledgement(complaint(), NOW, TWO_WEEKS)
    assert isinstance(plan, PlannedNotification)
    assert (plan.purpose, plan.medium) == (Purpose.ACKNOWLEDGEMENT, Medium.EMAIL)
    assert plan.recipient == "marie.tremblay@example.org"
    assert [medium for medium, _ in plan.fallbacks] == [Medium.SMS, Medium.LETTER]
    assert plan.values["email_unverified"] is True
    assert plan.values["represented_name"] == "Léa Tremblay"
    letter = plan.fallback().fallback()  # type: ignore[union-attr]
    assert letter is not None
    assert letter.medium == Medium.LETTER
    assert letter.recipient.startswith("Marie Tremblay\n123 rue Principale")
    assert len({plan.notification_id, letter.notification_id}) == 2


def test_given_only_a_phone_the_acknowledgement_is_an_sms(complaint: ComplaintFactory) -> None:
    event = complaint(complainant={"email": None, "postal_address": None})
    plan = plan_acknowledgement(event, NOW, TWO_WEEKS)
    assert isinstance(plan, PlannedNotification)
    assert (plan.medium, plan.recipient, plan.fallbacks) == (Medium.SMS, "+15145550123", ())


def test_given_only_a_postal_address_the_acknowledgement_is_a_letter(
    complaint: ComplaintFactory,
) -> None:
    event = complaint(complainant={"email": None, "phone": None})
    plan = plan_acknowledgement(event, NOW, TWO_WEEKS)
    assert isinstance(plan, PlannedNotification)
    assert plan.medium == Medium.LETTER


def test_nothing_is_sent_to_robots_anonymous_people_or_for_an_old_backlog(
    complaint: ComplaintFactory,
) -> None:
    old = (NOW - timedelta(days=30)).isoformat()
    cases = {
        "bounce": complaint(flags=["bounce"]),
        "auto_reply": complaint(flags=["auto_reply"]),
        "anonymous": complaint(kind="denunciation", complainant={"anonymous": True}),
        "older than the backlog limit": complaint(received_at=old),
        "no contact": complaint(complainant={"email": None, "phone": None, "postal_address": None}),
    }
    for reason, event in cases.items():
        assert plan_acknowledgement(event, NOW, TWO_WEEKS) == Skipped(reason), reason


def test_the_same_event_gives_the_same_notification_id_and_another_event_another(
    complaint: ComplaintFactory,
) -> None:
    first = plan_acknowledgement(complaint(), NOW, TWO_WEEKS)
    again = plan_acknowledgement(complaint(), NOW + timedelta(hours=1), TWO_WEEKS)
    other = plan_acknowledgement(
        complaint(event_id="00000000-0000-5000-8000-000000000001"), NOW, TWO_WEEKS
    )
    assert isinstance(first, PlannedNotification)
    assert isinstance(again, PlannedNotification)
    assert isinstance(other, PlannedNotification)
    assert first.notification_id == again.notification_id != other.notification_id


def test_an_email_complaint_is_answered_in_its_thread(complaint: ComplaintFactory) -> None:
    event = complaint(source_message={"id": "<abc@mail.example.org>", "uri": None})
    plan = plan_acknowledgement(event, NOW, TWO_WEEKS)
    assert isinstance(plan, PlannedNotification)
    assert plan.in_reply_to == "<abc@mail.example.org>"
    webform = complaint(channel="webform", source_message={"id": "<k>", "uri": None})
    planned = plan_acknowledgement(webform, NOW, TWO_WEEKS)
    assert isinstance(planned, PlannedNotification)
    assert planned.in_reply_to is None


def test_the_receipt_hash_covers_the_whole_event(complaint: ComplaintFactory) -> None:
    receipt = receipt_sha256(complaint(received_at="2026-11-23T14:05:12Z"))
    assert len(receipt) == 64
    assert receipt == receipt_sha256(complaint(received_at="2026-11-23T14:05:12Z"))
    assert receipt != receipt_sha256(complaint(received_at="2026-11-23T14:05:13Z"))


def test_a_status_change_goes_to_the_contact_on_record_in_their_language() -> None:
    change = StatusChanged(
        reference="PL-HP69-9MYG-AHW6",
        status=Status.TRANSFERRED,
        changed_at=NOW,
        transferred_to="Collège des médecins du Québec",
    )
    event = make_event(change, source_key="case-system:42")
    contact = Contact("PL-HP69-9MYG-AHW6", name="Ann", phone="+15145550123", language="en")
    plan = plan_status_update(event, contact)
    assert isinstance(plan, PlannedNotification)
    assert (plan.purpose, plan.medium, plan.language) == (Purpose.STATUS_UPDATE, Medium.SMS, "en")
    assert plan.values["transferred_to"] == "Collège des médecins du Québec"
    assert plan_status_update(event, None) == Skipped("no contact on record")


def test_the_day_of_receipt_is_the_offices_not_utcs(complaint: ComplaintFactory) -> None:
    """Filed at 21:30 in Montréal on 3 December, 02:30 on the 4th in UTC: the person is told the
    3rd (the day the due dates count from), and the receipt gives the same instant in local time."""
    filed = complaint(received_at="2026-12-04T02:30:00Z")
    rule = AcknowledgementRule(
        max_age=timedelta(days=36_500), zones={"ramq": ZoneInfo("America/Montreal")}
    )
    plan = rule.plan(filed, NOW)
    assert isinstance(plan, PlannedNotification)
    assert plan.values["received_at"].date() == date(2026, 12, 3)
    assert plan.values["received_at_iso"] == "2026-12-03T21:30:00-05:00"
    page = {**labels(plan.values, "fr"), "office_name": "RAMQ", "verify_url": None}
    message = TemplateLibrary().render("acknowledgement", "fr", page)
    assert "bien reçu votre plainte le 3 décembre 2026" in message.text
    in_utc = AcknowledgementRule(max_age=timedelta(days=36_500)).plan(filed, NOW)
    assert isinstance(in_utc, PlannedNotification)
    assert in_utc.values["received_at"].date() == date(2026, 12, 4)  # no zone known: UTC's
