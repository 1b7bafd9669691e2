"""Everything the state store keeps about a complaint, found and deleted by reference:
``ComplaintData``, what retention (``gateway.privacy.retention``) and erasure
(``gateway.privacy.erasure``) work with.

A complaint's **clock** starts at its closing, when the tracker saw a ``complaint.status_changed``
closing it (``tracked_complaint.closed_at``), else at its receipt: the earliest time any store
has of it (the object catalog's first row, the tracker's receipt, the notifier's contact and
ledger rows, the duplicate index). What lies under a reference on legal hold is never due.

Rows by kind:

- **objects**: the catalog rows naming a complaint's raw input and attachments
  (``stored_object``, role ``raw`` or ``attachment``); an object itself goes only once no row
  names it any more and no dead-letter record still holds it as its raw copy;
- **state**: the notifier's contacts and ledger rows, the keyed hashes of the contacts given
  with it, its entries in the duplicate index (and, on erasure, the idempotency answers that
  name it);
- **tracker**: its timeline and where it stands;
- **dlq**: dead-letter records (rejected inputs) and what was done to them, by the time they
  were recorded; their raw copies are objects like the others;
- reads of objects and processed inputs, by their own time.

Implementations: ``gateway.store.sqlite_complaint_data`` (the embedded files, attached to one
connection) and ``gateway.store.postgres.complaint_data``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Kind = Literal["state", "tracker"]


@dataclass(frozen=True)
class DueObject:
    sha256: str
    references: tuple[str, ...]  # whose catalog rows of the object are past due
    last: bool  # every row naming it is past due


@dataclass(frozen=True)
class DlqCopy:
    record_id: str
    sha256: str | None  # of its raw copy, if it has one


class ComplaintData(Protocol):
    async def due_objects(self, cutoffs: Mapping[str, datetime]) -> list[DueObject]:
        """Objects with catalog rows whose complaint's clock started before the cutoff of the
        row's role (``raw``, ``attachment``)."""
        ...

    async def due_references(self, kind: Kind, before: datetime) -> list[str]:
        """References with rows of ``kind`` whose clock started before ``before`` (or that
        nothing else dates any more)."""
        ...

    async def due_dlq(self, before: datetime) -> list[DlqCopy]: ...

    async def objects_of(self, reference: str) -> list[tuple[str, str]]:
        """(sha256, role) of the objects the catalog names for the complaint."""
        ...

    async def holders(self, sha256: str) -> set[str]:
        """The references whose catalog rows name the object."""
        ...

    async def dlq_needs(self, sha256: str, besides: Sequence[str] = ()) -> bool:
        """Whether a dead-letter record (other than ``besides``) holds it as its raw copy."""
        ...

    async def dlq_of(self, reference: str) -> list[DlqCopy]:
        """Dead-letter records about the complaint (documents that did not match it)."""
        ...

    async def forget_rows(self, sha256: str, references: Sequence[str]) -> int: ...

    async def forget_catalog(self, reference: str) -> int: ...

    async def forget_state(self, reference: str, *, answers: bool = False) -> dict[str, int]:
        """The complaint's state rows (``answers``: also the idempotency answers naming it)."""
        ...

    async def forget_tracker(self, reference: str) -> int: ...

    async def forget_dlq(self, record_ids: Sequence[str]) -> int: ...

    async def prune(self, reads_before: datetime, processed_before: datetime) -> dict[str, int]:
        """Reads of objects and processed inputs older than their cutoffs."""
        ...

    async def compact(self) -> None:
        """What was deleted leaves no copy in the store's files (journals checkpointed): after
        an erasure."""
        ...

    async def close(self) -> None: ...
