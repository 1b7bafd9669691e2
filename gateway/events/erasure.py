"""Payload of ``complaint.erased`` (on ``complaints.v1``): the gateway erased a complaint's
personal data on request (GDPR art. 17, Québec's Law 25): its stored objects (each object's data
key destroyed; an object another complaint also refers to is kept for it) and its state rows.
Case systems erase their copy too. It names the complaint and the time, nothing else; its id
derives from the reference (the same request made again is the same event).
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from gateway.events.common import Frozen
from gateway.events.complaint import REFERENCE_PATTERN


class ComplaintErased(Frozen):
    """A complaint whose personal data the gateway erased."""

    reference: str = Field(pattern=REFERENCE_PATTERN)
    erased_at: AwareDatetime = Field(description="when the gateway erased it")
