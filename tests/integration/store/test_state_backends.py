"""What every state backend promises (``gateway.store.state``, ``gateway.notifier.ledger``,
``gateway.normalizers.duplicates``, ``gateway.store.buckets``, ``gateway.store.keylocks``,
``gateway.store.secrets``), on SQLite and on PostgreSQL, with two openings of the same state
standing for two replicas (or two processes of one machine)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.normalizers.duplicates import shingles
from gateway.notifier.ledger import Contact, LedgerEntry
from gateway.store.backends import StateBackend
from tests.integration.store.conftest import Opener

pytestmark = pytest.mark.integration

TEXT = (
    "Bonjour, j'ai demandé le renouvellement de ma carte d'assurance maladie en août et je ne "
    "l'ai toujours pas reçue malgré trois appels au service à la clientèle."
)


async def test_the_first_answer_stored_for_a_key_is_kept_whoever_stores_next(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    assert await one.state.stored_response("form:f", "k") is None
    await asyncio.gather(
        one.state.store_response("form:f", "k", "sha-1", {"reference": "PL-1"}),
        other.state.store_response("form:f", "k", "sha-2", {"reference": "PL-2"}),
    )
    first = await one.state.stored_response("form:f", "k")
    assert first is not None
    assert first == await other.state.stored_response("form:f", "k")
    assert (first.body_sha256, first.response["reference"]) in {
        ("sha-1", "PL-1"),
        ("sha-2", "PL-2"),
    }
    assert await one.state.stored_response("form:g", "k") is None  # another scope


async def test_a_contact_matches_its_complaint_on_either_replica_trimmed_and_case_folded(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.state.record_contacts("PL-1", ["Marie@Example.org", "+15145550100", ""])
    assert await other.state.contact_matches("PL-1", "  marie@example.ORG ")
    assert await other.state.contact_matches("PL-1", "+15145550100")
    assert not await other.state.contact_matches("PL-1", "paul@example.org")
    assert not await other.state.contact_matches("PL-2", "marie@example.org")


async def test_checkpoints_last_write_wins(backend: StateBackend) -> None:
    assert await backend.state.checkpoint("INBOX") is None
    await backend.state.save_checkpoint("INBOX", 7, 40)
    await backend.state.save_checkpoint("INBOX", 7, 41)
    assert await backend.state.checkpoint("INBOX") == (7, 41)


async def test_claims_are_each_replicas_own_and_a_new_uidvalidity_forgets_them(
    open_backend: Opener, state_kind: str
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.state.add_claims("box", 10, {1: 100, 2: 101, 3: 102})
    await one.state.drop_claims("box", 10, [2])
    assert await one.state.claims("box", 10) == {1: 100, 3: 102}
    if state_kind == "postgres":  # one machine's SQLite file is that machine's only
        assert await other.state.claims("box", 10) == {}
    assert await one.state.claims("box", 11) == {}
    assert await one.state.claims("box", 10) == {}


async def test_the_first_event_marked_for_a_source_is_kept(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.state.mark_processed("email:<m@x>", "event-1")
    await other.state.mark_processed("email:<m@x>", "event-2")
    assert await other.state.processed_event("email:<m@x>") == "event-1"
    assert await one.state.processed_event("email:<other@x>") is None


def entry(status: str = "sending", **changes: object) -> LedgerEntry:
    values: dict[str, object] = {
        "notification_id": "n-1",
        "reference": "PL-1",
        "purpose": "acknowledgement",
        "medium": "email",
        "status": status,
        "recipient": "marie@example.org",
        "values": {"respond_by": "2027-01-05"},
    }
    values.update(changes)
    return LedgerEntry(**values)  # type: ignore[arg-type]


async def test_of_two_notifiers_claiming_at_once_one_wins(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    won = await asyncio.gather(
        one.ledger.claim(entry(), "notifier-a", 60), other.ledger.claim(entry(), "notifier-b", 60)
    )
    assert sorted(won) == [False, True]
    outcome = await one.ledger.outcome("n-1")
    assert outcome is not None
    assert outcome.status == "sending"


async def test_a_claim_is_renewed_by_its_owner_and_taken_over_once_its_lease_ran_out(
    backend: StateBackend,
) -> None:
    assert await backend.ledger.claim(entry(), "a", 0.5)
    assert await backend.ledger.claim(entry(), "a", 0.5)  # its own: renewed
    assert not await backend.ledger.claim(entry(), "b", 60)
    await asyncio.sleep(0.7)
    assert await backend.ledger.claim(entry(), "b", 60)  # "a" was killed: "b" sends it
    assert not await backend.ledger.claim(entry(), "a", 60)


async def test_a_notification_sent_or_failed_is_claimed_by_nobody(backend: StateBackend) -> None:
    assert await backend.ledger.claim(entry(), "a", 60)
    await backend.ledger.record(entry("sent", provider_message_id="<ack@x>"))
    assert not await backend.ledger.claim(entry(), "a", 60)
    outcome = await backend.ledger.outcome("n-1")
    assert outcome is not None
    assert (outcome.status, outcome.provider_message_id) == ("sent", "<ack@x>")
    await backend.ledger.record(entry("failed", notification_id="n-2"))
    assert not await backend.ledger.claim(entry(notification_id="n-2"), "a", 60)


async def test_the_ledger_finds_what_was_sent_about_a_complaint(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.ledger.record(entry("announced", provider_message_id="<ack-1@x>"))
    sms = entry("sent", notification_id="n-2", medium="sms", recipient="+15145550100")
    await one.ledger.record(sms)
    assert await other.ledger.acknowledgement_message_id("PL-1") == "<ack-1@x>"
    assert await other.ledger.latest_sms_reference("+15145550100", 30) == "PL-1"
    assert await other.ledger.latest_sms_reference("+15145550199", 30) is None
    sent = await other.ledger.latest_email("PL-1")
    assert sent is not None
    assert (sent.notification_id, sent.recipient) == ("n-1", "marie@example.org")
    assert sent.values == {"respond_by": "2027-01-05"}


async def test_contacts_are_merged_not_overwritten_with_nothing(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    await one.ledger.remember_contact(Contact("PL-1", name="Marie", email="marie@example.org"))
    await other.ledger.remember_contact(Contact("PL-1", phone="+15145550100"))
    assert await one.ledger.contact("PL-1") == Contact(
        "PL-1", name="Marie", email="marie@example.org", phone="+15145550100"
    )
    assert await one.ledger.contact("PL-2") is None


async def test_a_duplicate_is_found_whichever_replica_took_the_earlier_complaint(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    person = ["email:marie@example.org"]
    first = await asyncio.to_thread(
        one.duplicates.find_and_record, person, "PL-1", shingles(TEXT), at
    )
    again = await asyncio.to_thread(
        other.duplicates.find_and_record,
        person,
        "PL-2",
        shingles(TEXT + " Merci."),
        at + timedelta(days=2),
    )
    stranger = await asyncio.to_thread(
        other.duplicates.find_and_record, ["email:paul@example.org"], "PL-3", shingles(TEXT), at
    )
    late = await asyncio.to_thread(
        one.duplicates.find_and_record, person, "PL-4", shingles(TEXT), at + timedelta(days=31)
    )
    assert (first, again, stranger) == (None, "PL-1", None)
    assert late == "PL-2"  # PL-1 is out of the 30 days; PL-2 is within


async def test_replicas_spend_one_allowance(open_backend: Opener) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    rate, burst = 4 / 60, 4.0
    answers = [
        await (one if n % 2 else other).buckets.take("client\n10.0.0.1", rate, burst, count=True)
        for n in range(6)
    ]
    assert answers[:4] == [None] * 4
    assert all(wait is not None and 0 < wait <= 15 for wait in answers[4:])
    looked = await one.buckets.take("client\n10.0.0.1", rate, burst, count=False)
    assert looked is not None
    assert await one.buckets.take("client\n10.0.0.2", rate, burst, count=True) is None


async def test_a_key_is_held_by_one_replica_at_a_time(
    open_backend: Opener, state_kind: str
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    if state_kind == "sqlite":  # record locks are a process's: its tasks queue in one opening
        other = one  # (other processes: tests/unit/store/test_keylocks.py)
    order: list[str] = []

    async def hold(backend: StateBackend, name: str) -> None:
        async with backend.key_locks.holding("form:f\nk"):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    started = time.monotonic()
    await asyncio.gather(hold(one, "one"), hold(other, "other"))
    assert order[0].endswith(" in")
    assert order[1] == order[0].replace(" in", " out")  # nobody else inside meanwhile
    assert time.monotonic() - started >= 0.4
    async with one.key_locks.holding("form:f\nk"), other.key_locks.holding("form:f\nother"):
        pass  # another key: no wait


async def test_the_installation_secrets_are_the_same_for_every_replica(
    open_backend: Opener,
) -> None:
    one, other = await open_backend("a"), await open_backend("b")
    made = iter([b"first", b"second"])
    mine, theirs = await asyncio.gather(
        one.secrets.secret("link-key", lambda: next(made)),
        other.secrets.secret("link-key", lambda: next(made)),
    )
    assert mine == theirs
    assert mine in (b"first", b"second")


async def test_erasures_are_recorded_once_and_found_among_references(
    open_backend: Opener,
) -> None:
    """The first erasure of a reference is kept; another replica finds which of many references
    were erased (the tracker leaves their entries out), in one look-up past SQLite's limit of
    bound parameters."""
    a, b = await open_backend("replica-a"), await open_backend("replica-b")
    first = datetime(2027, 1, 15, 14, 2, 11, tzinfo=UTC)
    await a.privacy.record_erasure("PL-ERASED-1", first)
    await a.privacy.record_erasure("PL-ERASED-1", first + timedelta(days=1))
    await a.privacy.record_erasure("PL-ERASED-2", first)
    assert await b.privacy.erased_at("PL-ERASED-1") == first
    assert await b.privacy.erased_at("PL-KEPT") is None
    many = [f"PL-KEPT-{number}" for number in range(1200)] + ["PL-ERASED-2", "PL-ERASED-1"]
    assert await b.privacy.erased_among(many) == {"PL-ERASED-1", "PL-ERASED-2"}
    assert await b.privacy.erased_among([]) == set()


async def test_an_idempotency_key_is_claimed_by_one_request_until_answered_released_or_stale(
    open_backend: Opener,
) -> None:
    """A key's claim (taken before publishing) is refused to another replica while it holds;
    storing the answer or releasing the claim frees it; so does a claim past its lease."""
    a, b = await open_backend("replica-a"), await open_backend("replica-b")
    scope, lease = "form:contact-form", 60.0
    assert await a.state.claim_key(scope, "k1", lease)
    assert not await b.state.claim_key(scope, "k1", lease)
    assert not await a.state.claim_key(scope, "k1", lease)  # a second request on the same one
    assert await b.state.claim_key(scope, "k2", lease)  # another key is another claim
    await a.state.store_response(scope, "k1", "sha", {"reference": "PL-1"})
    assert await b.state.claim_key(scope, "k1", lease)
    await b.state.release_key(scope, "k1")
    assert await a.state.claim_key(scope, "k1", lease)
    await asyncio.sleep(0.3)
    assert not await b.state.claim_key(scope, "k1", lease)
    assert await b.state.claim_key(scope, "k1", 0.2)  # a dead replica's, past its lease


CLAIM_AND_DIE = """
import asyncio, os, sys
from gateway.settings import load_settings
from gateway.store.backends import open_state_backend

async def claim() -> None:
    backend = await open_state_backend(load_settings())
    assert await backend.state.claim_key(sys.argv[1], sys.argv[2], 3600.0)
    os._exit(0)  # as a replica killed while it publishes: the claim stays behind

asyncio.run(claim())
"""


async def test_an_idempotency_key_claimed_by_a_process_since_gone_is_taken_over_at_once(
    open_backend: Opener, state_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A replica killed while it held a key's claim (lease: an hour) leaves it behind; the
    retry on this machine finds its holder gone and takes the claim over at once, instead of
    answering 503 until the lease ends. A live holder's claim is still refused."""
    backend = await open_backend("replica-b")
    scope = "form:contact-form"
    environment = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "shared")}
    if state_kind == "postgres":
        environment["GATEWAY_DATA_DIR"] = str(tmp_path / "replica-gone")
        environment["GATEWAY_STATE_URL"] = request.getfixturevalue("postgres_url")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLAIM_AND_DIE, scope, "k-gone", env=environment
    )
    assert await asyncio.wait_for(child.wait(), timeout=60) == 0
    assert await backend.state.claim_key(scope, "k-gone", 3600.0)  # its holder is gone
    assert not await backend.state.claim_key(scope, "k-gone", 3600.0)  # now this process's
