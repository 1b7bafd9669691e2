"""The embedded state store: idempotency answers kept 7 days, pruned without a scan per request."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.store.sqlite_state import SqliteStateStore
from gateway.store.state import IDEMPOTENCY_DAYS


async def _old_key(store: SqliteStateStore, key: str) -> None:
    created = time.time() - (IDEMPOTENCY_DAYS + 1) * 86400  # an answer stored 8 days ago
    await store._file.write(
        "INSERT INTO idempotency VALUES ('form', ?, 'x', '{}', ?)", (key, created)
    )


async def test_answers_past_seven_days_are_pruned_at_most_once_a_minute(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state")
    try:
        await _old_key(store, "old-1")
        await store.store_response("form", "new-1", "h", {"reference": "PL-1"})
        assert await store.stored_response("form", "old-1") is None  # pruned
        await _old_key(store, "old-2")
        await store.store_response("form", "new-2", "h", {"reference": "PL-2"})
        assert await store.stored_response("form", "old-2") is not None  # within the minute
        stored = await store.stored_response("form", "new-1")
        assert stored is not None
        assert stored.response == {"reference": "PL-1"}
    finally:
        await store.close()


async def test_answers_survive_a_restart(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state")
    await store.store_response("form", "k", "h", {"reference": "PL-1"})
    await store.close()
    again = SqliteStateStore(tmp_path / "state")
    try:
        stored = await again.stored_response("form", "k")
        assert stored is not None
        assert stored.body_sha256 == "h"
    finally:
        await again.close()


async def test_claims_survive_a_restart_per_mailbox_and_a_new_uidvalidity_forgets_them(
    tmp_path: Path,
) -> None:
    store = SqliteStateStore(tmp_path / "state")
    await store.add_claims("plaintes", 10, {3: 1207, 1: 1205, 2: 1206})
    await store.add_claims("complaints", 10, {9: 40})
    await store.drop_claims("plaintes", 10, [2])
    await store.close()
    again = SqliteStateStore(tmp_path / "state")
    try:
        assert await again.claims("plaintes", 10) == {1: 1205, 3: 1207}
        assert await again.claims("plaintes", 11) == {}  # the folder was recreated
        assert await again.claims("plaintes", 10) == {}  # and the old UIDs are gone for good
        assert await again.claims("complaints", 10) == {9: 40}
    finally:
        await again.close()
