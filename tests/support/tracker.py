"""Events of a complaint's life for the tracker's tests: synthetic streams with known answers.

Each builder returns the CloudEvent a real producer would publish (the intake, the notifier, a
case system, the feedback page), with a deterministic id, so a stream can be published twice
(redelivery) and folded again (rebuild).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.components import Components
from gateway.events.common import Channel
from gateway.events.complaint import ComplaintReceived, DocumentAdded, StatusChanged
from gateway.events.envelope import CloudEvent, make_event
from gateway.events.feedback import FeedbackReceived
from gateway.events.notification import Medium, NotificationSent, Purpose
from gateway.normalizers.due import BUILTIN_POLICIES, DuePolicy
from gateway.reference import reference_for
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.backends import open_state_backend
from gateway.store.tracker import TrackedComplaint, TrackerStore
from gateway.tracker.assembly import tracker_service
from tests.support.kafka import free_port
from tests.support.notifier import start_group_at_end
from tests.support.services import running_service, with_overrides

MONTREAL = ZoneInfo("America/Montreal")
PARIS = ZoneInfo("Europe/Paris")
BRUSSELS = ZoneInfo("Europe/Brussels")
ZONES = {"ramq": MONTREAL, "fr-marianne": PARIS, "inami": BRUSSELS}


def local(policy: str, *moment: int) -> datetime:
    """A wall-clock time of the policy's office (year, month, day, hour...)."""
    return datetime(*moment, tzinfo=ZONES[policy])  # type: ignore[misc]


def reference(name: str) -> str:
    return reference_for(f"tracker-test:{name}", "PL")


def received(
    key: str,
    at: datetime,
    policy: str = "ramq",
    channel: Channel = Channel.EMAIL,
    flags: tuple[str, ...] = (),
    policies: Mapping[str, DuePolicy] = BUILTIN_POLICIES,
    **person: Any,
) -> CloudEvent[Any]:
    complainant = {"name": "Marie Tremblay", "email": "marie@example.org", **person}
    complaint = ComplaintReceived.model_validate(
        {
            "reference": reference(key),
            "channel": channel,
            "received_at": at,
            "kind": "complaint",
            "language": "fr",
            "body": "Ma carte n'est jamais arrivée.",
            "complainant": complainant,
            "source_message": {"id": f"<{key}@example.org>"},
            "flags": list(flags),
            "due": policies[policy].due(at),
        }
    )
    return make_event(complaint, source_key=f"test:{key}", time=at)


def acknowledged(name: str, at: datetime, medium: Medium = Medium.EMAIL) -> CloudEvent[Any]:
    sent = NotificationSent(
        notification_id=f"ack-{name}-{medium}",
        reference=reference(name),
        purpose=Purpose.ACKNOWLEDGEMENT,
        medium=medium,
        recipient="marie@example.org",
        language="fr",
        sent_at=at,
    )
    return make_event(sent, source_key=f"test:{name}:ack:{medium}", time=at)


def status(name: str, value: str, at: datetime, note: str | None = None) -> CloudEvent[Any]:
    change = StatusChanged.model_validate(
        {"reference": reference(name), "status": value, "changed_at": at, "message": note}
    )
    return make_event(
        change, source_key=f"test:{name}:{value}:{at.isoformat()}", source="urn:case", time=at
    )


def document(name: str, at: datetime, flags: tuple[str, ...] = ()) -> CloudEvent[Any]:
    added = DocumentAdded.model_validate(
        {
            "reference": reference(name),
            "channel": "webform",
            "received_at": at,
            "source_message": {"id": f"doc-{name}-{at.isoformat()}"},
            "flags": list(flags),
        }
    )
    return make_event(added, source_key=f"test:{name}:doc:{at.isoformat()}", time=at)


def feedback(name: str, rating: int, at: datetime) -> CloudEvent[Any]:
    given = FeedbackReceived(reference=reference(name), rating=rating, given_at=at)
    return make_event(given, source_key=f"feedback:{reference(name)}", time=at)


def utc(*moment: int) -> datetime:
    return datetime(*moment, tzinfo=UTC)  # type: ignore[misc]


async def tracker_settings(
    kafka: KafkaSettings, data_dir: Path, **overrides: Any
) -> GatewaySettings:
    """Settings of a tracker with a fresh group that starts at the end of the topics (other
    tests write to the same broker)."""
    group_id = f"tracker-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka.bootstrap, group_id)
    values: dict[str, Any] = {
        "kafka": kafka,
        "data_dir": data_dir,
        "http": {"port": free_port()},
        "public_url": "https://plaintes.example.org",
        "tracker": {"group_id": group_id, "batch_size": 50},
    }
    return with_overrides(values, overrides)


@contextlib.asynccontextmanager
async def running_tracker(settings: GatewaySettings) -> AsyncIterator[Components]:
    """The tracker service in this process (its components yielded: the store to look at)."""
    async with running_service(settings, tracker_service) as components:
        yield components


async def wait_for(
    store: TrackerStore,
    check: Callable[[TrackedComplaint | None], bool],
    ref: str,
    timeout_s: float = 30.0,
) -> TrackedComplaint | None:
    """The complaint once ``check`` holds for it (AssertionError at the timeout)."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await store.complaint(ref)
            if check(found):
                return found
            await asyncio.sleep(0.1)


def renamed(policy: str, name: str) -> DuePolicy:
    """A built-in policy under another name (a test's complaints counted apart from others')."""
    return replace(BUILTIN_POLICIES[policy], name=name)


def policies_file(path: Path, *policies: DuePolicy) -> Path:
    """``GATEWAY_NORMALIZER_DUE_POLICIES_FILE`` declaring these policies."""
    tables = [
        f'[[policy]]\nname = "{p.name}"\nacknowledge_days = {p.acknowledge.days}\n'
        f'acknowledge_count = "{p.acknowledge.count}"\nrespond_days = {p.respond.days}\n'
        f'respond_count = "{p.respond.count}"\ncountry = "{p.country}"\n'
        + (f'subdivision = "{p.subdivision}"\n' if p.subdivision else "")
        + f'timezone = "{p.timezone}"\n'
        for p in policies
    ]
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def synthetic_stream(
    prefix: str = "", ramq: str = "ramq", france: str = "fr-marianne"
) -> list[CloudEvent[Any]]:
    """Complaints with known answers (see tests/unit/tracker/test_indicators.py), under the
    policies named ``ramq`` and ``france`` (built-in ones, or renamed copies)."""
    policies = {ramq: renamed("ramq", ramq), france: renamed("fr-marianne", france)}
    zones = {ramq: MONTREAL, france: PARIS}

    def at(policy: str, *moment: int) -> datetime:
        return datetime(*moment, tzinfo=zones[policy])  # type: ignore[misc]

    def complaint(letter: str, policy: str, *moment: int, **more: Any) -> CloudEvent[Any]:
        return received(prefix + letter, at(policy, *moment), policy, policies=policies, **more)

    a, b, c, e, f = (prefix + letter for letter in "ABCEF")
    return [
        # A: acknowledged on the last allowed day (June 24 is a holiday), answered on the last
        complaint("A", ramq, 2026, 6, 23, 10),
        acknowledged(a, at(ramq, 2026, 6, 26, 16)),
        status(a, "answered", at(ramq, 2026, 7, 23, 15)),
        feedback(a, 5, at(ramq, 2026, 7, 24, 9)),
        # B: one business day late for both
        complaint("B", ramq, 2026, 6, 23, 11),
        acknowledged(b, at(ramq, 2026, 6, 29, 9)),
        status(b, "in_progress", at(ramq, 2026, 7, 2, 9), "Dossier attribué."),
        status(b, "answered", at(ramq, 2026, 7, 24, 9)),
        feedback(b, 2, at(ramq, 2026, 7, 25, 9)),
        # C: incomplete (needs_review), acknowledged the next day, not answered
        complaint("C", ramq, 2026, 6, 25, 10, flags=("needs_review",)),
        acknowledged(c, at(ramq, 2026, 6, 26, 9)),
        # D: anonymous (nothing can acknowledge it), not answered
        complaint("D", ramq, 2026, 6, 25, 14, name=None, email=None, anonymous=True),
        # E: a web form across Canada Day, acknowledged in time, not answered
        complaint("E", ramq, 2026, 6, 30, 21, 30, channel=Channel.WEBFORM),
        acknowledged(e, at(ramq, 2026, 7, 3, 9)),
        # F: France, across the Ascension: one day late to acknowledge, answered in time
        complaint("F", france, 2026, 5, 13, 10),
        acknowledged(f, at(france, 2026, 5, 19, 9)),
        status(f, "closed", at(france, 2026, 6, 5, 17)),
    ]


@contextlib.asynccontextmanager
async def embedded_tracker(data_dir: Path) -> AsyncIterator[TrackerStore]:
    """The tracker store of the embedded installation under ``data_dir``, its keys opened as the
    gateway opens them (its notes are sealed)."""
    backend = await open_state_backend(GatewaySettings.model_validate({"data_dir": data_dir}))
    try:
        yield backend.tracker
    finally:
        await backend.close()
