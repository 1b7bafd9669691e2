"""What the final notice adds when a case system says a complaint is ``answered`` or ``closed``:
the recourse of the complaint's policy and, when sent by email or SMS, a single-use satisfaction
link (``feedback_links``, rendered by the dispatcher).

The complaint's policy is the one the tracker recorded from its ``complaint.received``; the
office's default policy (``GATEWAY_NORMALIZER_DUE_POLICY``) when the tracker has not seen it
(not running, or the state store unreadable for a moment: the notice goes all the same).
"""

from __future__ import annotations

from typing import Any

import structlog

from gateway.errors import StateStoreError
from gateway.events.complaint import StatusChanged
from gateway.store.tracker import TrackerStore
from gateway.tracker.recourse import RecourseBook
from gateway.tracker.timeline import FINAL_STATUSES

log = structlog.get_logger(__name__)


class FinalAnswers:
    def __init__(self, recourses: RecourseBook, tracker: TrackerStore, default_policy: str) -> None:
        self._recourses = recourses
        self._tracker = tracker
        self._default_policy = default_policy

    async def values(self, change: StatusChanged) -> dict[str, Any]:
        """The notice's values: ``final`` and ``recourse`` (empty for another status)."""
        if str(change.status) not in FINAL_STATUSES:
            return {}
        policy = await self._policy(change.reference)
        recourse = self._recourses.of(policy)
        return {"final": True, "recourse": recourse.as_values() if recourse else None}

    async def _policy(self, reference: str) -> str:
        try:
            complaint = await self._tracker.complaint(reference)
        except StateStoreError as exc:
            log.warning("notifier.policy_unknown", reference=reference, error=str(exc))
            return self._default_policy
        if complaint is None or not complaint.policy:
            log.info("notifier.policy_unknown", reference=reference, reason="not tracked")
            return self._default_policy
        return complaint.policy
