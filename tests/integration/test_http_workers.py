"""Several HTTP workers (``GATEWAY_HTTP_WORKERS=2``), run as a user runs the gateway: both
serve, an idempotency key is honoured whichever worker each retry reaches, the metrics count
every worker, a dead worker is replaced, and no worker outlives the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.events import topics
from gateway.settings import KafkaSettings
from gateway.web.signature import sign
from tests.support.consumer import TopicReader
from tests.support.http import SECRETS, GatewayProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

FORM_URL = "/v1/webhooks/forms/contact-form"


def children(parent: int) -> list[int]:
    try:
        return [
            int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        ]
    except FileNotFoundError:
        return []


def command(pid: int) -> str:
    """The process's name (``comm``) or, if gone, ''."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def zygote_pid(parent: int) -> int:
    (zygote,) = [pid for pid in children(parent) if command(pid) == "gateway-zygote"]
    return zygote


def worker_pids(parent: int) -> list[int]:
    """The HTTP worker processes of the gateway: forked by its zygote, named for their number."""
    found = [pid for zygote in children(parent) for pid in children(zygote)]
    return [pid for pid in found if command(pid).startswith("gateway-http-") and alive(pid)]


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


async def until(condition: object, timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def serving_lines(log: Path) -> int:
    """HTTP servers accepting connections (the parent's and each worker's)."""
    return log.read_text().count('"event": "http.serving"') if log.exists() else 0


async def two_workers(
    kafka_settings: KafkaSettings, tmp_path: Path, per_form_per_minute: int
) -> GatewayProcess:
    process = GatewayProcess(
        kafka_settings.bootstrap,
        tmp_path / "data",
        log=tmp_path / "gateway.log",
        GATEWAY_HTTP_WORKERS="2",
        GATEWAY_WEBHOOK_SECRETS=json.dumps(SECRETS),
        GATEWAY_HTTP_RATE_PER_FORM_PER_MINUTE=str(per_form_per_minute),
    )
    await asyncio.to_thread(process.start)
    assert process.log is not None
    log = process.log
    await until(lambda: serving_lines(log) >= 2, what="both workers serving")
    return process


@pytest.fixture
async def gateway(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await two_workers(kafka_settings, tmp_path, 1_000_000)
    try:
        yield process
    finally:
        process.stop()


def submission(number: int) -> bytes:
    return json.dumps(
        {"name": f"Personne {number}", "email": f"p{number}@example.org", "body": "Sans réponse."}
    ).encode()


async def post(url: str, body: bytes, key: str) -> httpx.Response:
    """On a connection of its own (a new connection may reach either worker)."""
    headers = {
        "content-type": "application/json",
        "Idempotency-Key": key,
        "X-Gateway-Signature": sign(body, SECRETS["contact-form"][0]),
    }
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.post(FORM_URL, content=body, headers=headers)


async def test_given_two_workers_then_both_serve_and_each_submission_is_published_once(
    gateway: GatewayProcess, kafka_settings: KafkaSettings
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    keys = [str(uuid.uuid4()) for _ in range(40)]
    answers = await asyncio.gather(
        *(post(gateway.url, submission(n), k) for n, k in enumerate(keys))
    )
    assert [answer.status_code for answer in answers] == [202] * len(keys)
    records = await reader.read(len(keys))
    sources = [json.loads(r.value)["data"]["source_message"]["id"] for r in records]
    assert sorted(sources) == sorted(keys)
    assert gateway.log is not None
    published = [
        line for line in gateway.log.read_text().splitlines() if "intake.published" in line
    ]
    by_worker = {'"http_worker": 1' in line for line in published}
    assert by_worker == {True, False}, "one process took every submission"


async def test_given_one_key_sent_at_once_through_both_workers_then_one_event_and_one_answer(
    gateway: GatewayProcess, kafka_settings: KafkaSettings
) -> None:
    reader = TopicReader(kafka_settings.bootstrap, topics.COMPLAINTS)
    await reader.mark()
    key, body = str(uuid.uuid4()), submission(1)
    answers = await asyncio.gather(*(post(gateway.url, body, key) for _ in range(12)))
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["event_id"] for answer in answers}) == 1
    other = await asyncio.gather(*(post(gateway.url, submission(2), key) for _ in range(6)))
    assert {answer.status_code for answer in other} == {409}
    records = await reader.read(2, timeout_s=5)
    assert [json.loads(r.value)["data"]["source_message"]["id"] for r in records] == [key]


async def test_the_metrics_count_the_submissions_of_every_worker(gateway: GatewayProcess) -> None:
    keys = [str(uuid.uuid4()) for _ in range(20)]
    await asyncio.gather(*(post(gateway.url, submission(n), k) for n, k in enumerate(keys)))
    pattern = re.compile(
        r'^gateway_events_published_total\{topic="complaints\.v1",type="complaint\.received"\} '
        r"([\d.]+)$",
        re.MULTILINE,
    )
    for _ in range(6):  # each scrape on a new connection: either worker answers
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            text = (await client.get("/metrics")).text
        assert float(pattern.search(text).group(1)) == len(keys)  # type: ignore[union-attr]


def shared_mb(pid: int) -> float:
    """Memory of the process whose pages other processes map too (``smaps_rollup``)."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Shared_Clean:", "Shared_Dirty:")):
            total += int(line.split()[1])
    return total / 1024


async def test_given_two_workers_then_the_worker_shares_the_language_models_it_was_forked_with(
    gateway: GatewayProcess,
) -> None:
    """The models (~300 MB) are loaded before the zygote is forked: the worker maps the same
    pages (a worker started fresh shares only its libraries, a few tens of MB)."""
    (worker,) = worker_pids(gateway.pid)
    zygote = zygote_pid(gateway.pid)
    assert command(worker) == "gateway-http-1"
    assert Path(f"/proc/{worker}/stat").read_text().split(") ")[1].split()[1] == str(zygote)
    assert shared_mb(worker) > 200


async def test_given_a_worker_killed_then_another_takes_its_place(gateway: GatewayProcess) -> None:
    (first,) = worker_pids(gateway.pid)
    os.kill(first, signal.SIGKILL)
    await until(lambda: worker_pids(gateway.pid) not in ([], [first]), what="a new worker")
    assert gateway.log is not None
    log = gateway.log
    await until(lambda: serving_lines(log) >= 3, what="the new worker serving")
    answers = await asyncio.gather(*(post(gateway.url, submission(n), f"k{n}") for n in range(10)))
    assert {answer.status_code for answer in answers} == {202}
    assert '"event": "http.worker_exited"' in log.read_text()


async def test_given_the_gateway_killed_then_its_workers_stop_by_themselves(
    gateway: GatewayProcess,
) -> None:
    (worker,) = worker_pids(gateway.pid)
    gateway.kill()  # SIGKILL: the gateway cannot stop its workers
    await until(lambda: not alive(worker), timeout_s=40, what="the orphaned worker stopped")


async def test_given_sigterm_then_the_gateway_and_its_workers_stop(gateway: GatewayProcess) -> None:
    (worker,) = worker_pids(gateway.pid)
    assert gateway.process is not None
    gateway.process.terminate()
    assert await asyncio.to_thread(gateway.process.wait, 40) == 0
    assert not alive(worker)


async def test_given_two_workers_then_a_form_gets_one_allowance_not_two(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    gateway = await two_workers(kafka_settings, tmp_path, per_form_per_minute=10)
    try:
        started = time.monotonic()
        answers = [await post(gateway.url, submission(n), f"limit-{n}") for n in range(20)]
        elapsed = time.monotonic() - started
    finally:
        gateway.stop()
    codes = [answer.status_code for answer in answers]
    # The bucket refills as time goes, a token every 6 s: on a busy machine the 20 posts may
    # take long enough for one or two more. Two allowances (one per worker) would accept 20.
    refilled = int(elapsed * 10 / 60)
    assert refilled < 5, f"the posts took {elapsed:.0f} s: too slow to tell"
    assert 10 <= codes.count(202) <= 10 + refilled, (codes, elapsed)
    assert codes.count(202) + codes.count(429) == 20, codes
    assert codes[:10] == [202] * 10, codes
