"""Indicators from the topics, end to end: a synthetic stream with known answers (under policies
of this test's own, so that no other test's complaints count) folded by the tracker on a real
broker, then read through GET /v1/indicators, GET /transparency (FR/EN), the Prometheus gauges
and ``intake-gateway indicators [--overdue]``; a rebuild by the command gives the same figures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.normalizers.due import BUILTIN_POLICIES
from gateway.settings import GatewaySettings, KafkaSettings
from gateway.store.sqlite_tracker import SqliteTrackerStore
from gateway.tracker.indicators import Indicators, PolicyIndicators, indicators_of, today_in
from gateway.tracker.timeline import ComplaintFold, entry_of
from tests.support.http import running_gateway
from tests.support.tracker import (
    policies_file,
    reference,
    renamed,
    running_tracker,
    synthetic_stream,
    tracker_settings,
    wait_for,
)

pytestmark = pytest.mark.integration


@dataclass
class Run:
    url: str
    settings: GatewaySettings
    names: tuple[str, str]
    prefix: str
    environment: dict[str, str]


@pytest.fixture(scope="module")
async def run(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    tag = uuid.uuid4().hex[:8]
    names = (f"ramq-{tag}", f"france-{tag}")
    folder = tmp_path_factory.mktemp("transparency")
    policies = policies_file(
        folder / "policies.toml", renamed("ramq", names[0]), renamed("fr-marianne", names[1])
    )
    settings = await tracker_settings(
        kafka_settings,
        folder,
        normalizer={"due_policies_file": policies},
        tracker={"indicators_refresh_s": 0.2},
    )
    environment = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(folder),
        "GATEWAY_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "GATEWAY_NORMALIZER_DUE_POLICIES_FILE": str(policies),
    }
    prefix = f"{tag}-"
    async with running_gateway(settings) as (url, publisher), running_tracker(settings) as tracker:
        for event in synthetic_stream(prefix, *names):
            await publisher.publish(event)
        store = tracker.backend.tracker
        await wait_for(store, lambda found: bool(found and found.rating), reference(prefix + "B"))
        await wait_for(
            store, lambda found: bool(found and found.closed_at), reference(prefix + "F")
        )
        await wait_for(store, lambda found: bool(found and found.month), reference(prefix + "E"))
        yield Run(url, settings, names, prefix, environment)


async def expected(run: Run) -> list[PolicyIndicators]:
    """The same stream folded in memory, told on today's dates."""
    policies = {
        name: renamed(base, name)
        for base, name in zip(("ramq", "fr-marianne"), run.names, strict=True)
    }
    store = SqliteTrackerStore(None)
    fold = ComplaintFold({**BUILTIN_POLICIES, **policies})
    entries = [entry_of(event) for event in synthetic_stream(run.prefix, *run.names)]
    await store.apply([entry for entry in entries if entry], fold)
    found = [await store.figures(name, today_in(policies[name])) for name in run.names]
    await store.close()
    return indicators_of(found, policies).policies


async def served(run: Run) -> list[PolicyIndicators]:
    async with httpx.AsyncClient(base_url=run.url) as client:
        answer = await client.get("/v1/indicators")
    assert answer.status_code == 200
    assert answer.headers["cache-control"].startswith("public, max-age=")
    indicators = Indicators.model_validate_json(answer.content)
    return sorted(
        (policy for policy in indicators.policies if policy.policy in run.names),
        key=lambda policy: run.names.index(policy.policy),
    )


async def settled(run: Run, want: list[PolicyIndicators]) -> list[PolicyIndicators]:
    """What the endpoint serves once its figures are at least one refresh newer than the
    folding (the board serves the figures at hand while it computes new ones)."""
    async with asyncio.timeout(15):
        while True:
            found = await served(run)
            if found == want:
                return found
            await asyncio.sleep(0.25)


async def test_the_indicators_endpoint_gives_the_known_answers(run: Run) -> None:
    want = await expected(run)
    assert await settled(run, want) == want
    ramq = want[0]
    everything = next(s for s in ramq.slices if (s.month, s.channel) == ("all", "all")).figures
    assert everything.received == 5
    assert everything.acknowledgement.share_in_time == 0.75
    assert everything.open_past_due == 3  # C, D and E (due July 29): today is later
    assert everything.satisfaction["5"] == everything.satisfaction["2"] == 1


async def test_the_page_in_french_and_english_and_the_gauges(run: Run) -> None:
    await settled(run, await expected(run))
    await asyncio.sleep(0.5)  # the gauges follow at the board's next refresh
    async with httpx.AsyncClient(base_url=run.url) as client:
        french = await client.get("/transparency", headers={"accept-language": "fr"})
        english = await client.get("/transparency?lang=en")
        metrics = await client.get("/metrics")
    assert french.status_code == english.status_code == 200
    assert "Comment nous tenons nos engagements" in french.text
    assert "accuser réception en 2 jours ouvrables, répondre en 20 jours ouvrables" in french.text
    assert "juin 2026" in french.text
    assert "How we keep our promises" in english.text
    assert "June 2026" in english.text
    assert "75 %" in english.text  # acknowledged in time, every month, all channels
    for page in (french.text, english.text):
        assert "<script" not in page
        assert '<svg class="bar"' in page
        assert run.prefix not in page  # no reference
    ramq = run.names[0]
    line = (
        f'gateway_complaints_in_time_ratio{{channel="all",policy="{ramq}",step="acknowledge"}} 0.75'
    )
    assert line in metrics.text
    assert f'gateway_complaints_open_past_due{{channel="all",policy="{ramq}"}} 3.0' in metrics.text


async def command(run: Run, *arguments: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", *arguments],
        env=run.environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def test_the_office_lists_overdue_references_and_the_figures_on_the_command_line(
    run: Run,
) -> None:
    overdue = (await command(run, "indicators", "--overdue")).splitlines()
    mine = [line.split("\t") for line in overdue if line.split("\t")[1] in run.names]
    both_due_july_24 = sorted(reference(run.prefix + name) for name in "CD")
    assert [fields[0] for fields in mine] == [*both_due_july_24, reference(run.prefix + "E")]
    assert all(len(fields) == 5 for fields in mine)  # reference, policy, channel, date, status
    table = (await command(run, "indicators")).splitlines()
    assert table[0].startswith("policy\tmonth\tchannel\treceived\tack_in_time")
    totals = next(line for line in table if line.startswith(f"{run.names[0]}\tall\tall\t"))
    assert totals.split("\t")[3:6] == ["5", "3", "0.75"]


async def test_a_rebuild_from_the_topics_gives_the_same_figures(run: Run) -> None:
    before = await settled(run, await expected(run))
    assert (await command(run, "tracker", "rebuild")).startswith("rebuilt\t")
    await asyncio.sleep(0.5)  # the board's refresh period
    assert await settled(run, before) == before
