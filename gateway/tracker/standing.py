"""Where my complaint stands: what a person who holds the reference and its contact is told.

``StatusLookup.find`` answers only when the contact is one given with the complaint (the keyed
hashes the state store keeps: ``StateStore.contact_matches``) and the tracker knows it. A wrong
pairing and an unknown reference get the same ``None``, after the same work: both look-ups run
(together) whatever the first finds, and the answer is built from the complaint found or from a
stand-in, then dropped when it does not match. The answer holds the status, the dates the
office promised and kept, and the last change with its note: nothing else personal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime

from pydantic import BaseModel, Field

from gateway.normalizers.contacts import normalise_email, normalise_phone
from gateway.normalizers.due import DuePolicy
from gateway.store.state import StateStore
from gateway.store.tracker import STAND_IN, TrackedComplaint, TrackerStore
from gateway.tracker.timeline import ComplaintFold


class LastChange(BaseModel):
    status: str = Field(description="the status the case system set")
    on: date = Field(description="the day of the change (the office's time zone)")
    note: str | None = Field(default=None, description="the case officer's note for the person")


class ComplaintStanding(BaseModel):
    """Where a complaint stands (dates in the office's time zone)."""

    reference: str
    status: str = Field(
        description="received, acknowledged, in_progress, awaiting_information, transferred, "
        "answered or closed"
    )
    received_on: date
    acknowledged: bool
    acknowledged_on: date | None = None
    acknowledge_by: date | None = Field(default=None, description="the promised date")
    respond_by: date | None = Field(default=None, description="the promised date")
    last_change: LastChange | None = None


class StatusLookup:
    def __init__(
        self, state: StateStore, tracker: TrackerStore, policies: Mapping[str, DuePolicy]
    ) -> None:
        self._state = state
        self._tracker = tracker
        self._fold = ComplaintFold(policies)

    async def find(self, reference: str, contact: str) -> ComplaintStanding | None:
        """Where the complaint stands if ``contact`` was given with it, else None (unknown
        reference or wrong pairing alike)."""
        matches, found = await asyncio.gather(
            self._state.contact_matches(reference, contact), self._tracker.complaint(reference)
        )
        known = found is not None and found.received_at is not None
        standing = self.standing(found if known and found is not None else STAND_IN)
        return standing if matches and known else None

    def standing(self, complaint: TrackedComplaint) -> ComplaintStanding:
        policy = complaint.policy
        received = complaint.received_at or STAND_IN.received_at or datetime.now(UTC)
        acknowledged = complaint.acknowledged_at
        change = None
        if complaint.status_at is not None:
            change = LastChange(
                status=complaint.status,
                on=self._fold.day(policy, complaint.status_at),
                note=complaint.status_note,
            )
        return ComplaintStanding(
            reference=complaint.reference,
            status=_status(complaint),
            received_on=self._fold.day(policy, received),
            acknowledged=acknowledged is not None,
            acknowledged_on=self._fold.day(policy, acknowledged) if acknowledged else None,
            acknowledge_by=complaint.acknowledge_by,
            respond_by=complaint.respond_by,
            last_change=change,
        )


def _status(complaint: TrackedComplaint) -> str:
    """The case system's last status; before any, acknowledged or received."""
    if complaint.status_at is not None:
        return complaint.status
    return "acknowledged" if complaint.acknowledged_at is not None else "received"


def contact_as_recorded(contact: str, region: str) -> str:
    """A contact as the intake recorded it: an email normalised, a phone in E.164 (numbers
    written without +country read in ``region``), else as typed."""
    return normalise_email(contact) or normalise_phone(contact, region) or contact.strip()
