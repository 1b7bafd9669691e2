"""``scripts/dev`` as a newcomer runs it: a fresh data folder, ports of their choosing while
another broker runs, the README's examples as written, the metrics, the mailbox, and a port
held by somebody else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.events import topics
from gateway.local_kafka import DevBroker, cluster_id
from gateway.settings import KafkaSettings
from tests.conftest import REPO
from tests.support.consumer import TopicReader
from tests.support.forms import signed_json
from tests.support.kafka import free_port, free_port_pair
from tests.support.readme import Block, commands, of_kind

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FORM_ROUTE = "/v1/webhooks/forms/{form_id}"
COMPLAINT = {"name": "Marie Tremblay", "email": "marie@example.org", "body": "Carte jamais reçue."}


def dev_environment(data_dir: Path) -> dict[str, str]:
    """What a newcomer's shell has: no GATEWAY_ setting but the data folder."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    return {**clean, "GATEWAY_DATA_DIR": str(data_dir)}


@dataclass
class Dev:
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    http_port: int
    kafka_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C, as in the terminal; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)


def start_dev(data_dir: Path, log: Path, http_port: int, kafka_port: int, *flags: str) -> Dev:
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["scripts/dev", "--http-port", str(http_port), "--kafka-port", str(kafka_port), *flags],
            cwd=REPO,
            env=dev_environment(data_dir),
            stdout=output,
            stderr=output,
        )
    return Dev(process, log, data_dir, http_port, kafka_port)


@contextlib.contextmanager
def running(dev: Dev) -> Iterator[Dev]:
    try:
        yield dev
    finally:
        if dev.process.poll() is None:
            dev.process.kill()
            dev.process.wait(timeout=30)
        if (pid := _read(dev.data_dir / "kafka" / "broker.pid")).isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def until(condition: Callable[[], object], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout_s} s: {what}")


async def until_ready(dev: Dev) -> None:
    async def ready() -> bool:
        assert dev.process.poll() is None, f"dev exited early:\n{dev.text()[-3000:]}"
        try:
            async with httpx.AsyncClient(base_url=dev.url, timeout=2) as client:
                return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    deadline = time.monotonic() + 240
    while not await ready():
        assert time.monotonic() < deadline, f"dev not ready:\n{dev.text()[-3000:]}"
        await asyncio.sleep(0.25)


def readme_block(block: Block, dev: Dev, drop_port: int) -> str:
    """The block with the ports dev chose in place of the README's defaults."""
    return block.text.replace("127.0.0.1:8080", f"127.0.0.1:{dev.http_port}").replace(
        "2525", str(drop_port)
    )


def run_readme_blocks(dev: Dev, drop_port: int) -> dict[str, str]:
    """Each ``dev-session`` block of the README as a user runs it from the clone, with only the
    data folder set; what each command printed, by command."""
    printed: dict[str, str] = {}
    environment = dev_environment(dev.data_dir)
    for block in of_kind("dev-session"):
        text = readme_block(block, dev, drop_port)
        if block.language == "python":
            runs = [[sys.executable, "-c", text]]
        else:
            lines = commands(Block(None, "sh", text, block.line))
            runs = [["bash", "-o", "pipefail", "-c", line] for line in lines]
        for command in runs:
            done = subprocess.run(
                command, cwd=REPO, env=environment, capture_output=True, timeout=120, check=False
            )
            shown = command[-1][:60]
            assert done.returncode == 0, f"README.md:{block.line} {shown}: {done.stderr.decode()}"
            printed[command[-1]] = done.stdout.decode()
    return printed


async def signed_burst(dev: Dev, count: int) -> list[int]:
    """``count`` signed submissions from this one address, 20 at a time."""
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=dev.url, timeout=60, limits=limits) as client:
        answers = await asyncio.gather(
            *(
                client.post("/v1/webhooks/forms/contact-form", **signed_json(COMPLAINT))
                for _ in range(count)
            )
        )
    return [answer.status_code for answer in answers]


def http_samples(metrics: str) -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "gateway_http_requests_total":
                key = ("requests", sample.labels["route"], sample.labels["method"])
                found[(*key, sample.labels["status"])] = sample.value
            elif sample.name == "gateway_http_refusals_total":
                found[("refusals", sample.labels["reason"])] = sample.value
            elif sample.name == "gateway_http_request_seconds_count":
                found[("seconds", sample.labels["route"])] = sample.value
    return found


def error_lines(log: str) -> list[str]:
    errors = []
    for line in log.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                errors.append(line)
    return errors


def answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def check_the_metrics(dev: Dev) -> None:
    """The burst, the README's submission and the forged one, under the route's template."""
    async with httpx.AsyncClient(base_url=dev.url) as client:
        samples = http_samples((await client.get("/metrics")).text)
    assert samples[("requests", FORM_ROUTE, "POST", "202")] == 201  # the burst + the README's
    assert samples[("requests", FORM_ROUTE, "POST", "401")] == 1
    assert samples[("refusals", "signature")] == 1
    assert samples[("seconds", FORM_ROUTE)] == 202
    raw_path = "/v1/webhooks/forms/contact-form"
    assert not any(raw_path in label for key in samples for label in key)  # bounded labels


async def check_the_events_and_the_mail(dev: Dev) -> None:
    """201 webform events and the README's mail, whose acknowledgement reaches the outbox."""
    reader = TopicReader(dev.bootstrap, topics.COMPLAINTS)
    await reader.mark_beginning()
    records = await reader.read(202, timeout_s=60)
    events = [json.loads(record.value) for record in records]
    channels = [event["data"]["channel"] for event in events]
    assert channels.count("webform") == 201
    assert channels.count("email") == 1  # the README's mail, read from the local mailbox
    [mailed] = [event["subject"] for event in events if event["data"]["channel"] == "email"]
    outbox = dev.data_dir / "outbox"
    await until(
        lambda: any(
            "To: marie@example.org" in path.read_text(errors="replace")
            for path in outbox.glob(f"{mailed}-*.eml")
        ),
        what="the acknowledgement of the mailed complaint in the outbox",
    )


@pytest.mark.timeout(600)  # two starts of dev, a broker's among them, and 200 submissions
async def test_scripts_dev_from_scratch_on_chosen_ports_beside_another_broker(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The README's examples as written give 202, an event, a mail's acknowledgement; the
    metrics count them under the route's template; no line at level error; Ctrl-C stops all."""
    data_dir = tmp_path / "data"
    log = tmp_path / "dev.log"
    dev = start_dev(data_dir, log, free_port(), free_port_pair(), "--mailbox", "--keep-kafka")
    with running(dev):
        await until_ready(dev)
        started = dev.text()
        assert "example form 'contact-form' signed with secret 's3cret'" in started
        drop = re.search(r"complaints@localhost by SMTP at 127\.0\.0\.1:(\d+)", started)
        assert drop is not None, started[-2000:]
        # another broker (the tests') runs: dev's own is another cluster, in the data folder
        assert await cluster_id(dev.bootstrap) == DevBroker.of(data_dir).cluster_id()
        assert await cluster_id(dev.bootstrap) != await cluster_id(kafka_settings.bootstrap)

        codes = await signed_burst(dev, 200)  # one address, well within a minute
        assert codes == [202] * 200
        async with httpx.AsyncClient(base_url=dev.url) as client:
            forged = await client.post(
                "/v1/webhooks/forms/contact-form", **signed_json(COMPLAINT, secret="wrong")
            )
        assert forged.status_code == 401

        printed = run_readme_blocks(dev, int(drop.group(1)))
        signing = next(out for command, out in printed.items() if "webhooks/forms" in command)
        assert signing.startswith("202 "), signing
        tailed = next(out for command, out in printed.items() if " tail " in command)
        assert json.loads(tailed)["type"] == "complaint.received"
        assert '"status":"ready"' in next(out for cmd, out in printed.items() if "readyz" in cmd)

        await check_the_metrics(dev)
        await check_the_events_and_the_mail(dev)

        assert dev.interrupt() == 0
        assert not answers(dev.http_port)
        assert answers(dev.kafka_port)  # --keep-kafka
        assert error_lines(dev.text()) == []

        # the next dev on the same data folder reuses the broker it started; nothing else does
        again = start_dev(data_dir, log, dev.http_port, dev.kafka_port)
        with running(again):
            await until_ready(again)
            assert "reusing the Kafka broker it started on" in again.text()
            assert again.interrupt() == 0
        await until(lambda: not answers(dev.kafka_port), what="the broker stopped", timeout_s=60)
    assert error_lines(log.read_text()) == []


def dev_command(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "dev", *arguments],
        cwd=REPO,
        env=dev_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("held", ["kafka", "http"])
def test_a_port_held_by_a_plain_listener_stops_dev_with_one_line(tmp_path: Path, held: str) -> None:
    http_port, kafka_port = free_port(), free_port_pair()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", kafka_port if held == "kafka" else http_port))
        listener.listen()
        done = dev_command(
            tmp_path / "data", "--http-port", str(http_port), "--kafka-port", str(kafka_port)
        )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1, done.stderr
    port = kafka_port if held == "kafka" else http_port
    assert f"port {port} " in lines[0]
    assert f"--{held}-port" in lines[0]
    assert not DevBroker.of(tmp_path / "data").running()  # nothing left running
    assert not answers(kafka_port)
    assert not answers(http_port)


def test_dev_does_not_use_a_broker_it_did_not_start(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    port = int(kafka_settings.bootstrap.rsplit(":", 1)[1])
    done = dev_command(
        tmp_path / "data", "--http-port", str(free_port()), "--kafka-port", str(port)
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1, done.stderr
    assert f"port {port} (Kafka) is in use by another program" in lines[0]
    assert "--kafka-port" in lines[0]
    assert answers(port)  # the other broker untouched


def test_dev_without_dovecot_says_how_to_install_it(tmp_path: Path) -> None:
    environment = dev_environment(tmp_path / "data")
    environment["PATH"] = str(Path(sys.executable).parent)  # python, but no dovecot
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "dev", "--mailbox", "--http-port", str(free_port())],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "intake-gateway: configuration error: dev --mailbox needs Dovecot's IMAP server: "
        "apt-get install dovecot-imapd (Debian, Ubuntu; the package is named dovecot elsewhere)"
    ]
