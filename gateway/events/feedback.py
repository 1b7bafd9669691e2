"""Payload of ``complaint.feedback_received`` (on ``complaints.v1``): how the person rated the
handling of their complaint, through the single-use link of the final notice.

One answer per complaint (its event id derives from the reference). No personal data is asked:
a rating and, if the person wishes, a comment.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from gateway.events.common import Frozen
from gateway.events.complaint import REFERENCE_PATTERN

MAX_COMMENT = 2000


class FeedbackReceived(Frozen):
    """The person's satisfaction after the final answer: 1 (very dissatisfied) to 5 (very
    satisfied)."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    rating: int = Field(ge=1, le=5, description="1 very dissatisfied ... 5 very satisfied")
    comment: str | None = Field(
        default=None, max_length=MAX_COMMENT, description="what the person chose to add, if any"
    )
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$", description="of the page")
    given_at: AwareDatetime
