"""The notifier's memory: ``NotificationLedger`` (survives restarts, shared by the notifiers).

- ``notifications``: one row per deterministic notification id and its outcome, so a redelivered
  complaint event never sends twice. Before the provider is called, a notifier **claims** the
  notification (``claim``: the row ``sending``, its name and a lease); another notifier that
  gets the same event (a rebalance, a restart) finds the claim and waits for its outcome rather
  than sending too; a claim whose lease ran out (its notifier was killed) may be taken over.
  The row is ``sent`` right after the provider answered; offsets are committed only after that.
- ``contacts``: how to reach the person of each complaint (for status updates, the fallback after
  a bounce, and to tie an inbound SMS to the complaint it answers).

Implementations: ``gateway.store.sqlite_ledger`` (embedded, the default) and
``gateway.store.postgres.ledger`` (``GATEWAY_STATE_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Contact:
    reference: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str
    provider_message_id: str | None


@dataclass(frozen=True)
class LedgerEntry:
    """A notification's state, as the dispatcher records it."""

    notification_id: str
    reference: str
    purpose: str
    medium: str
    status: str
    provider_message_id: str | None = None
    recipient: str | None = None
    values: dict[str, Any] | None = None


@dataclass(frozen=True)
class SentEmail:
    """An email we sent about a complaint, and the values it was rendered from."""

    notification_id: str
    purpose: str
    recipient: str
    values: dict[str, Any]


class NotificationLedger(Protocol):
    async def outcome(self, notification_id: str) -> Outcome | None: ...

    async def claim(self, entry: LedgerEntry, owner: str, lease_s: float) -> bool:
        """Record ``entry`` as ``sending`` by ``owner`` for ``lease_s`` seconds and return True,
        unless another owner's claim on it is still within its lease, or it is no longer
        ``sending`` (sent or failed meanwhile): then False and nothing changes. The owner's own
        claim is renewed."""
        ...

    async def record(self, entry: LedgerEntry) -> None:
        """Returns once the entry is committed."""
        ...

    async def remember_contact(self, contact: Contact) -> None: ...

    async def contact(self, reference: str) -> Contact | None: ...

    async def latest_sms_reference(self, phone: str, within_days: int) -> str | None:
        """The complaint we last sent an SMS about to this number, within the window."""
        ...

    async def acknowledgement_message_id(self, reference: str) -> str | None:
        """The Message-ID of the acknowledgement mailed for a complaint, if one was."""
        ...

    async def latest_email(self, reference: str) -> SentEmail | None:
        """The last email sent about a complaint (to act on its bounce)."""
        ...

    async def close(self) -> None: ...


def message_id_or_none(found: str) -> str | None:
    """A provider id that is an RFC 5322 Message-ID (``<...>``), else None."""
    return found if found.startswith("<") and found.endswith(">") else None
