"""The notifier ledger's sealing of a notification's recipient and values (``DetailSealer``)."""

from __future__ import annotations

from gateway.notifier.ledger import LedgerEntry
from gateway.store.keyring import Keyring, MasterKey
from gateway.store.sealed import DetailSealer, SealedDetails, StoredDetails

RING = Keyring([MasterKey.of("k1", b"1" * 32)])
PEPPER = b"p" * 32


def _entry(notification_id: str, status: str, values: dict[str, object] | None) -> LedgerEntry:
    return LedgerEntry(
        notification_id,
        reference="PL-TEST",
        purpose="acknowledgement",
        medium="email",
        status=status,
        recipient="lucie.roy@exemple.qc.ca",
        values=values,
    )


def _opened(notification_id: str, sealed: SealedDetails) -> tuple[object, object]:
    stored = StoredDetails(
        notification_id, sealed.recipient, sealed.recipient_key_id, sealed.values,
        sealed.values_key_id, None,
    )  # fmt: skip
    return stored.opened_recipient(RING), stored.opened_values(RING)


def test_given_a_claim_then_its_outcomes_then_the_recipient_is_sealed_once_and_opens() -> None:
    sealer = DetailSealer(RING, PEPPER)
    claim = sealer.entry(_entry("n1", "sending", {"reference": "PL-TEST"}))
    sent = sealer.entry(_entry("n1", "sent", None))
    announced = sealer.entry(_entry("n1", "announced", None))

    assert claim.recipient is not None
    assert "lucie" not in claim.recipient
    assert sent.recipient == claim.recipient == announced.recipient
    assert sent.recipient_hash == claim.recipient_hash is not None
    assert (sent.values, sent.values_key_id) == (None, None)  # the row keeps the claim's values
    assert _opened("n1", claim) == ("lucie.roy@exemple.qc.ca", {"reference": "PL-TEST"})
    assert _opened("n1", sent) == ("lucie.roy@exemple.qc.ca", None)


def test_given_two_notifications_then_each_has_its_own_sealed_recipient() -> None:
    sealer = DetailSealer(RING, PEPPER)
    first = sealer.entry(_entry("n1", "sending", None))
    second = sealer.entry(_entry("n2", "sending", None))

    assert first.recipient != second.recipient  # sealed for its own notification
    assert first.recipient_hash == second.recipient_hash  # one person, one keyed hash
    assert _opened("n2", second)[0] == "lucie.roy@exemple.qc.ca"


def test_given_more_notifications_than_kept_then_they_are_sealed_again() -> None:
    sealer = DetailSealer(RING, PEPPER)
    sealer.CACHED = 2
    first = sealer.entry(_entry("n1", "sending", None))
    sealer.entry(_entry("n2", "sending", None))
    sealer.entry(_entry("n3", "sending", None))
    again = sealer.entry(_entry("n1", "sent", None))

    assert again.recipient != first.recipient
    assert _opened("n1", again)[0] == "lucie.roy@exemple.qc.ca"
