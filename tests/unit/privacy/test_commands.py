"""The privacy commands on an embedded data folder, as an operator types them: legal holds
placed, listed and released (twice is said so), references checked, a retention dry run that
touches nothing, and the daily run inside ``run`` surviving a failed run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from gateway.errors import StateStoreError
from gateway.privacy.retention import RetentionReport, RetentionService
from gateway.reference import reference_for

REFERENCE = reference_for("webform:privacy-commands")


def command(data_dir: Path, *args: str) -> tuple[int, list[str], str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**environment, "GATEWAY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout.splitlines(), done.stderr.strip()


def test_a_legal_hold_is_placed_listed_and_released_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert command(data_dir, "retention", "hold", REFERENCE.lower(), "--note", "inquiry")[:2] == (
        0,
        [f"held\t{REFERENCE}"],
    )
    again = command(data_dir, "retention", "hold", REFERENCE)
    assert again == (1, [], f"intake-gateway: {REFERENCE} is already on hold")
    code, listed, _ = command(data_dir, "retention", "holds")
    [line] = listed
    assert code == 0
    assert line.startswith(f"{REFERENCE}\t")
    assert line.endswith("\tinquiry")
    assert command(data_dir, "retention", "release", REFERENCE)[:2] == (
        0,
        [f"released\t{REFERENCE}"],
    )
    assert command(data_dir, "retention", "release", REFERENCE)[0] == 1
    assert command(data_dir, "retention", "holds")[1] == []


def test_a_mistyped_reference_is_said_so_and_nothing_is_done(tmp_path: Path) -> None:
    code, out, err = command(tmp_path / "data", "retention", "hold", "PL-0000-0000-0001")
    assert (code, out) == (1, [])
    assert err.startswith("intake-gateway: ")


def test_a_dry_run_on_nothing_counts_nothing(tmp_path: Path) -> None:
    code, out, _ = command(tmp_path / "data", "retention", "run", "--dry-run")
    assert code == 0
    assert all(line.startswith(("would delete\t", "kept\t")) for line in out)
    assert all(line.endswith("\t0") for line in out)


class Flaky:
    """A retention whose first run fails (a database gone) and the next ones succeed."""

    def __init__(self) -> None:
        self.runs = 0
        self.third = asyncio.Event()

    async def run(self, now: datetime | None = None, dry_run: bool = False) -> RetentionReport:
        self.runs += 1
        if self.runs == 3:
            self.third.set()
        if self.runs == 1:
            raise StateStoreError("state database: gone")
        return RetentionReport(dry_run)


async def test_the_daily_run_goes_on_after_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.privacy.retention.DAY_S", 700.0)  # the spread is +-600 s
    monkeypatch.setattr("gateway.privacy.retention.random.uniform", lambda _a, _b: -699.99)
    flaky = Flaky()
    service = RetentionService(flaky, first_s=0.0)  # type: ignore[arg-type]
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(flaky.third.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
