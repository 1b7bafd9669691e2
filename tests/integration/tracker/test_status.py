"""Where my complaint stands, against the HTTP server and the tracker on a real broker: complaints
filed through the signed webhook, folded by the tracker, looked up by reference and contact.

A wrong pairing and an unknown reference get the same answer, byte for byte, and in the same
time (200 tries each, interleaved); limits per client and per reference; the page in French and
English without JavaScript."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.forms import signed_json
from tests.support.http import SECRETS, running_gateway
from tests.support.pages import page_token
from tests.support.tracker import reference, running_tracker, status, tracker_settings, utc

pytestmark = pytest.mark.integration

PER_REFERENCE = 6
PER_CLIENT = 12
_addresses = itertools.count(1)


def address() -> dict[str, str]:
    """A client address of its own (X-Forwarded-For from the trusted loopback proxy)."""
    number = next(_addresses)
    return {"x-forwarded-for": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"}


@dataclass
class Tracked:
    url: str
    settings: GatewaySettings
    publisher: KafkaPublisher


@pytest.fixture(scope="module")
async def tracked(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Tracked]:
    settings = await tracker_settings(
        kafka_settings,
        tmp_path_factory.mktemp("status"),
        webhook_secrets=SECRETS,
        http={"trusted_proxies": ["127.0.0.1"]},
        tracker={
            "status_per_client_per_hour": PER_CLIENT,
            "status_per_reference_per_hour": PER_REFERENCE,
        },
    )
    async with running_gateway(settings) as (url, publisher), running_tracker(settings):
        yield Tracked(url, settings, publisher)


async def file_complaint(url: str, email: str, phone: str) -> str:
    fields = {"name": "Marie Tremblay", "email": email, "phone": phone, "body": "Ma carte."}
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/v1/webhooks/forms/contact-form", **signed_json(fields))
    assert answer.status_code == 202, answer.text
    return str(answer.json()["reference"])


async def look_up(url: str, **body: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.post("/v1/complaints/status", json=body, headers=address())


async def until_known(url: str, reference: str, email: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            answer = await look_up(url, reference=reference, email=email)
            if answer.status_code == 200:
                return dict(answer.json())
            await asyncio.sleep(0.2)


async def until_status(url: str, ref: str, wanted: str, **contact: str) -> httpx.Response:
    async with asyncio.timeout(30):
        while True:
            answer = await look_up(url, reference=ref, **contact)
            if answer.json().get("status") == wanted:
                return answer
            await asyncio.sleep(0.2)


async def test_the_person_sees_status_dates_and_the_last_change_and_nothing_else(
    tracked: Tracked,
) -> None:
    ref = await file_complaint(tracked.url, "marie.t@example.org", "+15145550199")
    first = await until_known(tracked.url, ref, "Marie.T@Example.org ")
    assert first["status"] == "received"
    assert first["acknowledged"] is False
    assert first["last_change"] is None
    change = status("x", "in_progress", utc(2026, 12, 7, 15), "Dossier confié à Mme Roy.")
    await tracked.publisher.publish(
        change.model_copy(
            update={"subject": ref, "data": change.data.model_copy(update={"reference": ref})}
        )
    )
    answer = await until_status(tracked.url, ref, "in_progress", phone="514 555-0199")
    shown = answer.json()
    assert shown["last_change"] == {
        "status": "in_progress",
        "on": "2026-12-07",
        "note": "Dossier confié à Mme Roy.",
    }
    assert set(shown) == {
        "reference",
        "status",
        "received_on",
        "acknowledged",
        "acknowledged_on",
        "acknowledge_by",
        "respond_by",
        "last_change",
    }
    assert shown["acknowledge_by"] < shown["respond_by"]
    for personal in ("Marie", "marie", "5550199", "carte"):
        assert personal not in answer.text
    assert answer.headers["cache-control"] == "no-store"


async def test_a_wrong_pairing_and_an_unknown_reference_get_the_same_answer(
    tracked: Tracked,
) -> None:
    ref = await file_complaint(tracked.url, "luc@example.org", "+15145550123")
    await until_known(tracked.url, ref, "luc@example.org")
    wrong = await look_up(tracked.url, reference=ref, email="someone@example.org")
    unknown = await look_up(
        tracked.url, reference=reference("never-filed"), email="luc@example.org"
    )
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.content == unknown.content
    assert wrong.headers["content-type"] == unknown.headers["content-type"]
    invalid = await look_up(tracked.url, reference="PL-7K3M-9Q2X-HB4H", email="luc@example.org")
    assert invalid.status_code == 422  # a mistyped reference: said at once, it reveals nothing
    both = await look_up(tracked.url, reference=ref, email="luc@example.org", phone="+15145550123")
    assert both.status_code == 422


async def test_limits_per_reference_and_per_client_hold_known_or_not(tracked: Tracked) -> None:
    ref = await file_complaint(tracked.url, "ana@example.org", "+15145550142")
    await until_known(tracked.url, ref, "ana@example.org")  # one look-up (or a few) counted
    for target in (ref, reference("no-such-complaint")):
        codes = [
            (
                await look_up(tracked.url, reference=target, email=f"guess{n}@example.org")
            ).status_code
            for n in range(PER_REFERENCE + 1)
        ]
        assert codes[-1] == 429, target
        assert set(codes[:-1]) <= {404, 429}
    right = await look_up(tracked.url, reference=ref, email="ana@example.org")
    assert right.status_code == 429  # the reference's allowance is spent, whoever asks
    client = address()
    async with httpx.AsyncClient(base_url=tracked.url, headers=client) as one_client:
        codes = [
            (
                await one_client.post(
                    "/v1/complaints/status",
                    json={"reference": reference(f"client-{n}"), "email": "a@example.org"},
                )
            ).status_code
            for n in range(PER_CLIENT + 1)
        ]
    assert codes == [404] * PER_CLIENT + [429]


async def test_the_page_answers_in_french_and_english_with_plain_forms(tracked: Tracked) -> None:
    ref = await file_complaint(tracked.url, "eve@example.org", "+15145550177")
    await until_known(tracked.url, ref, "eve@example.org")
    async with httpx.AsyncClient(base_url=tracked.url) as client:
        form = await client.get("/complaints/status", headers={"accept-language": "fr-CA"})
        assert form.status_code == 200
        assert '<html lang="fr">' in form.text
        assert 'method="post" action="/complaints/status?lang=fr"' in form.text
        assert "<script" not in form.text
        csrf = await page_token(client, "/complaints/status")  # the form's first field
        found = await client.post(
            "/complaints/status?lang=fr",
            data={"csrf_token": csrf, "reference": ref.lower(), "contact": "eve@example.org"},
            headers=address(),
        )
        assert found.status_code == 200
        assert "Votre demande" in found.text
        assert ref in found.text
        assert "reçu" in found.text
        assert "eve@example.org" not in found.text  # the contact is not echoed
        missing = await client.post(
            "/complaints/status?lang=en",
            data={"csrf_token": csrf, "reference": ref, "contact": "mallory@example.org"},
            headers=address(),
        )
        assert missing.status_code == 200
        assert "We found no request with this file number and this contact" in missing.text
        invalid = await client.post(
            "/complaints/status?lang=en",
            data={"csrf_token": csrf, "reference": "nope", "contact": ""},
            headers=address(),
        )
        assert invalid.status_code == 422
        assert 'href="#reference"' in invalid.text
        assert 'href="#contact"' in invalid.text


async def test_timing_of_a_wrong_pairing_and_an_unknown_reference_shows_no_usable_difference(
    tracked: Tracked,
) -> None:
    """200 look-ups each, interleaved, each a reference of its own (the per-reference limit
    never bites): their latencies cannot tell the two apart (a threshold classifier does no
    better than chance, the pairs' median difference within a tenth of a millisecond or 10 %)."""
    tries = 200
    known = await asyncio.gather(
        *(
            file_complaint(tracked.url, f"p{n}@example.org", f"+1514555{n:04d}")
            for n in range(tries)
        )
    )
    await until_known(tracked.url, known[-1], f"p{tries - 1}@example.org")
    timings: dict[str, list[float]] = {"wrong": [], "unknown": []}
    async with httpx.AsyncClient(base_url=tracked.url) as client:
        for _ in range(20):  # warm up
            await client.get("/healthz")
        for n, ref in enumerate(known):
            pair = [("wrong", ref), ("unknown", reference(f"unknown-{n}"))]
            for kind, target in pair if n % 2 else reversed(pair):  # neither always first
                body = {"reference": target, "email": f"other{n}@example.org"}
                started = time.perf_counter()
                answer = await client.post("/v1/complaints/status", json=body, headers=address())
                timings[kind].append(time.perf_counter() - started)
                assert answer.status_code == 404
    wrong, unknown = timings["wrong"], timings["unknown"]
    # the median of the pairs' differences: a systematic gap shows in it, while a busy machine's
    # slow spells (which moved the medians of each kind apart by 15 % in a CI run) touch both
    # look-ups of a pair alike
    gap = abs(statistics.median(w - u for w, u in zip(wrong, unknown, strict=True)))
    assert gap < max(0.0001, 0.1 * statistics.median(unknown)), (gap, statistics.median(unknown))
    assert best_threshold_accuracy(wrong, unknown) < 0.62


def best_threshold_accuracy(first: list[float], second: list[float]) -> float:
    """The best share of look-ups a single latency threshold sorts right (0.5: chance)."""
    labelled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    total, best = len(labelled), 0.5
    below_first = below_second = 0
    for _, label in labelled:
        below_first += label == 0
        below_second += label == 1
        above_second = len(second) - below_second
        above_first = len(first) - below_first
        best = max(best, (below_first + above_second) / total, (below_second + above_first) / total)
    return best
