"""Erased complaints stay out of the tracker.

``intake-gateway erase`` deletes a complaint's tracker rows, publishes ``complaint.erased`` and
records the erasure. The tracker keeps it so: it forgets the complaint again when it reads the
event (an event of the complaint folded between the deletion and the event), and it folds no
entry of an erased complaint, neither live (a late acknowledgement, a rating) nor in a rebuild,
which reads the topics from their first offset, where the complaint's events may still be until
Kafka's retention removes them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.store.complaint_data import ComplaintData
from gateway.store.privacy import PrivacyRecords
from gateway.store.tracker import TimelineEntry


@dataclass(frozen=True)
class ErasedComplaints:
    privacy: PrivacyRecords
    data: ComplaintData

    async def without_erased(self, entries: Sequence[TimelineEntry]) -> list[TimelineEntry]:
        """``entries`` but those of erased complaints."""
        if not entries:
            return []
        erased = await self.privacy.erased_among({entry.reference for entry in entries})
        return [entry for entry in entries if entry.reference not in erased]

    async def forget(self, references: Collection[str]) -> int:
        """The tracker's rows of these complaints deleted; how many there were."""
        return sum([await self.data.forget_tracker(reference) for reference in references])
