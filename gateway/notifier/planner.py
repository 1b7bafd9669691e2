"""What to send for each event: pure decisions, no I/O (easy to test from example events).

- ``complaint.received``: an acknowledgement by email (with a validation link when the address is
  not verified), else by SMS, else by letter when only a postal address is known. Nothing for
  auto-replies, bounces, anonymous inputs, or inputs older than the backlog limit.
- ``complaint.status_changed``: a status update to the contact on record.
- ``complaint.document_added`` flagged ``bounce``: our email did not arrive, so the
  acknowledgement is sent again by the next medium (SMS, then letter).
- ``notification.requested`` published by another service (the "new link" page): sent as asked.

Notification ids are uuid5 over the triggering event's id, the purpose and the medium, so a
redelivered event gives the same ids and the ledger recognises what was already sent.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from gateway.events.complaint import ComplaintReceived, Flag, StatusChanged
from gateway.events.envelope import CloudEvent
from gateway.events.notification import Medium, Purpose
from gateway.notifier.ledger import Contact

NOTIFICATION_NAMESPACE = uuid.UUID("3d0f8a43-7c52-5f1e-8d0b-6a1f9e2c4b77")

KIND_LABELS = {
    "fr": {
        "complaint": "plainte",
        "denunciation": "dénonciation",
        "comment": "commentaire",
        "information_request": "demande de renseignements",
        "unknown": "message",
    },
    "en": {
        "complaint": "complaint",
        "denunciation": "report",
        "comment": "comment",
        "information_request": "request for information",
        "unknown": "message",
    },
}
STATUS_LABELS = {
    "fr": {
        "received": "reçu",
        "acknowledged": "pris en charge",
        "in_progress": "en cours de traitement",
        "awaiting_information": "en attente d'informations de votre part",
        "transferred": "transmis à l'organisme compétent",
        "answered": "réponse envoyée",
        "closed": "dossier fermé",
    },
    "en": {
        "received": "received",
        "acknowledged": "taken in hand",
        "in_progress": "in progress",
        "awaiting_information": "waiting for information from you",
        "transferred": "sent to the competent body",
        "answered": "answered",
        "closed": "closed",
    },
}


@dataclass(frozen=True)
class PlannedNotification:
    """One message to send; ``fallbacks`` are tried in order if it fails for good."""

    notification_id: str
    reference: str
    purpose: Purpose
    medium: Medium
    recipient: str
    language: str | None
    values: dict[str, Any] = field(default_factory=dict)
    in_reply_to: str | None = None
    follows: str | None = None  # the Message-ID of our acknowledgement, for a status update
    fallbacks: tuple[tuple[Medium, str], ...] = ()
    trigger_id: str = ""
    # True when the trigger is this notification's own ``notification.requested`` (another
    # service asked for it): it is not announced a second time
    requested_elsewhere: bool = False

    def fallback(self) -> PlannedNotification | None:
        """The same message by the next medium, with its own id."""
        if not self.fallbacks:
            return None
        (medium, recipient), rest = self.fallbacks[0], self.fallbacks[1:]
        return replace(
            self,
            notification_id=notification_id(self.trigger_id, self.purpose, medium),
            medium=medium,
            recipient=recipient,
            fallbacks=rest,
            requested_elsewhere=False,  # a new notification: announced by the notifier
        )


@dataclass(frozen=True)
class Skipped:
    """Nothing is sent, for this reason (logged and counted)."""

    reason: str


def notification_id(trigger_id: str, purpose: Purpose, medium: Medium) -> str:
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{trigger_id}\n{purpose}\n{medium}"))


def receipt_sha256(event: CloudEvent[Any]) -> str:
    """SHA-256 over the canonical event: its JSON with sorted keys, no spaces, UTF-8."""
    canonical = json.dumps(
        event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def contact_of(complaint: ComplaintReceived) -> Contact:
    person = complaint.complainant
    return Contact(
        reference=complaint.reference,
        name=person.name,
        email=person.email,
        phone=person.phone,
        postal_address=person.postal_address,
        language=complaint.language,
    )


def routes(contact: Contact) -> list[tuple[Medium, str]]:
    """Where a person can be reached, best first: email, SMS, letter."""
    found = [
        (Medium.EMAIL, contact.email),
        (Medium.SMS, contact.phone),
        (Medium.LETTER, _letter_address(contact)),
    ]
    return [(medium, recipient) for medium, recipient in found if recipient]


def _letter_address(contact: Contact) -> str | None:
    if not contact.postal_address:
        return None
    return "\n".join(part for part in (contact.name, contact.postal_address) if part)


@dataclass(frozen=True)
class AcknowledgementRule:
    """No acknowledgement for an input older than ``max_age`` (a backlog imported after
    downtime); the day of receipt told in the time zone of the complaint's due-date policy (the
    day its due dates count from: a letter posted at 21:30 in Montréal is not "received" the
    next day because it is 02:30 in UTC)."""

    max_age: timedelta = timedelta(days=14)
    zones: Mapping[str, tzinfo] = field(default_factory=dict)  # due-date policy -> its zone
    default_zone: tzinfo = UTC

    def plan(self, event: CloudEvent[Any], now: datetime) -> PlannedNotification | Skipped:
        due = event.data.due
        zone = self.zones.get(due.policy, self.default_zone) if due else self.default_zone
        return plan_acknowledgement(event, now, self.max_age, zone)


def plan_acknowledgement(
    event: CloudEvent[Any], now: datetime, max_age: timedelta, zone: tzinfo = UTC
) -> PlannedNotification | Skipped:
    """``zone``: the office's, where the day of receipt (from which the due dates count) is told;
    the receipt's time is the same instant, written with that zone's offset."""
    complaint: ComplaintReceived = event.data
    if reason := _no_acknowledgement(complaint, now, max_age):
        return Skipped(reason)
    contact = contact_of(complaint)
    reachable = routes(contact)
    if not reachable:
        return Skipped("no contact")
    represented = complaint.represented_person
    values = {
        "reference": complaint.reference,
        "received_at": complaint.received_at.astimezone(zone),
        "received_at_iso": complaint.received_at.astimezone(zone).isoformat(),
        "due": complaint.due,
        "kind": str(complaint.kind),
        "name": complaint.complainant.name,
        "represented_name": represented.name if represented else None,
        "receipt_sha256": receipt_sha256(event),
        "email_unverified": bool(complaint.complainant.email)
        and not complaint.complainant.email_verified,
    }
    return _by_best_route(
        event.id,
        Purpose.ACKNOWLEDGEMENT,
        contact,
        reachable,
        values,
        in_reply_to=_answered_message_id(complaint),
    )


def _no_acknowledgement(complaint: ComplaintReceived, now: datetime, max_age: timedelta) -> str:
    flags = set(complaint.flags)
    if Flag.BOUNCE in flags:
        return "bounce"
    if Flag.AUTO_REPLY in flags:
        return "auto_reply"
    if complaint.complainant.anonymous:
        return "anonymous"
    if now - complaint.received_at > max_age:
        return "older than the backlog limit"
    return ""


def _answered_message_id(complaint: ComplaintReceived) -> str | None:
    message_id = complaint.source_message.id
    if complaint.channel == "email" and message_id.startswith("<") and message_id.endswith(">"):
        return message_id
    return None


def plan_status_update(
    event: CloudEvent[Any],
    contact: Contact | None,
    follows: str | None = None,
    final: Mapping[str, Any] | None = None,
) -> PlannedNotification | Skipped:
    """``follows``: the Message-ID of the acknowledgement we mailed, so that the update is in
    the same thread of the person's mailbox. ``final``: what a final answer adds (``final``,
    ``recourse``: ``gateway.notifier.final_answer``)."""
    change: StatusChanged = event.data
    reachable = routes(contact) if contact else []
    if contact is None or not reachable:
        return Skipped("no contact on record")
    values = {
        "reference": change.reference,
        "name": contact.name,
        "status": str(change.status),
        "message": change.message,
        "transferred_to": change.transferred_to,
        "final": False,
        "recourse": None,
        **(final or {}),
    }
    planned = _by_best_route(event.id, Purpose.STATUS_UPDATE, contact, reachable, values)
    return replace(planned, follows=follows)


def _by_best_route(
    trigger_id: str,
    purpose: Purpose,
    contact: Contact,
    reachable: list[tuple[Medium, str]],
    values: dict[str, Any],
    in_reply_to: str | None = None,
) -> PlannedNotification:
    """The notification by the first route, the others as its fallbacks."""
    (medium, recipient), fallbacks = reachable[0], tuple(reachable[1:])
    return PlannedNotification(
        notification_id=notification_id(trigger_id, purpose, medium),
        reference=contact.reference,
        purpose=purpose,
        medium=medium,
        recipient=recipient,
        language=contact.language,
        values=values,
        in_reply_to=in_reply_to,
        fallbacks=fallbacks,
        trigger_id=trigger_id,
    )


def labels(values: dict[str, Any], language: str) -> dict[str, Any]:
    """The words of a template in its language: kind and status labels."""
    kinds = KIND_LABELS.get(language, KIND_LABELS["en"])
    statuses = STATUS_LABELS.get(language, STATUS_LABELS["en"])
    return {
        **values,
        "kind_label": kinds.get(str(values.get("kind", "unknown")), kinds["unknown"]),
        "status_label": statuses.get(str(values.get("status", "")), ""),
    }
