"""What each stored object is, and who read it: ``ObjectCatalog``.

The object store is content-addressed and knows bytes only; the catalog keeps, for each object
a complaint refers to, its file name and media type (what ``GET /v1/objects/{sha256}`` answers
with) and the complaint's reference, and records every read of an object by a case system
(who, what, when, which bytes), so an auditor can ask who read a complaint's documents.
The state stores implement it (SQLite: one machine; PostgreSQL: every replica).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

_SHA256_AT_END = re.compile(r"([0-9a-f]{64})$")


@dataclass(frozen=True)
class CatalogEntry:
    sha256: str
    reference: str
    filename: str
    media_type: str
    role: str  # "attachment" or "raw" (the input as it came: a mail, a form's body, a scan)


@dataclass(frozen=True)
class ObjectRead:
    consumer: str
    sha256: str
    byte_range: str | None  # "0-1023" for a Range request, None for the whole object
    read_at: datetime


class ObjectCatalog(Protocol):
    async def record_objects(self, entries: list[CatalogEntry]) -> None:
        """Idempotent: an object of a complaint recorded again changes nothing."""
        ...

    async def catalog_entry(self, sha256: str) -> CatalogEntry | None:
        """What the object is (the first complaint's entry when several share its bytes)."""
        ...

    async def record_read(self, read: ObjectRead) -> None: ...

    async def reads_of(self, reference: str) -> list[ObjectRead]:
        """The reads of the objects of a complaint, oldest first."""
        ...


def sha256_of_uri(uri: str | None) -> str | None:
    """The content address a stored object's URI ends with (file:// or s3://)."""
    found = _SHA256_AT_END.search(uri or "")
    return found.group(1) if found else None
