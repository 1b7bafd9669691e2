"""Example events for the notifier's unit tests, built from the checked-in v1 fixtures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.events.envelope import CloudEvent, parse_event
from gateway.store.sqlite_ledger import SqliteLedger
from tests.conftest import FIXTURES

ComplaintFactory = Callable[..., CloudEvent[Any]]


@pytest.fixture
def complaint() -> ComplaintFactory:
    """A ``complaint.received`` event; keyword arguments replace fields of ``data`` and
    ``complainant``, ``event_id`` the envelope's id (``received_at`` defaults to now, so the
    backlog rule does not apply)."""

    def build(**changes: Any) -> CloudEvent[Any]:
        event = json.loads((FIXTURES / "events/v1/complaint.received.json").read_text())
        data = event["data"]
        data["received_at"] = datetime.now(UTC).isoformat()
        event["id"] = changes.pop("event_id", event["id"])
        data["complainant"].update(changes.pop("complainant", {}))
        data.update(changes)
        return parse_event(json.dumps(event))

    return build


@pytest.fixture
async def ledger() -> AsyncIterator[SqliteLedger]:
    """An in-memory ledger."""
    ledger = SqliteLedger(None)
    yield ledger
    await ledger.close()
