"""The Tesseract pool outlives its workers: a worker killed mid-page (the OOM killer, an
operator) breaks a ProcessPoolExecutor for good; the engine makes a new pool and reads the file
again, and a file that kills its worker every time is refused instead of retried forever."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from gateway.errors import UnreadableDocument
from gateway.ocr.tesseract import TesseractEngine
from tests.support.letters import save_tiff, scanned_letters

pytestmark = pytest.mark.slow


def kill_workers(engine: TesseractEngine) -> int:
    pids = [process.pid for process in engine._pool._processes.values()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return len(pids)


async def until_busy(engine: TesseractEngine) -> None:
    for _ in range(200):
        if engine._pool._processes:
            await asyncio.sleep(0.5)  # started: now reading a page
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the pool never started a worker")


async def test_a_worker_killed_mid_page_costs_a_new_pool_not_the_letter(tmp_path: Path) -> None:
    letter = scanned_letters()[0]
    path = save_tiff([letter.page, letter.page], tmp_path / "letter.tif")
    engine = TesseractEngine(workers=1)
    try:
        reading = asyncio.create_task(engine.read(path))
        await until_busy(engine)
        assert kill_workers(engine) == 1
        pages = await reading
        assert [page.number for page in pages] == [1, 2]
        assert all("TREM" in page.text.replace(" ", "") for page in pages)
    finally:
        engine.close()


async def test_a_file_that_kills_its_worker_every_time_is_refused(tmp_path: Path) -> None:
    letter = scanned_letters()[0]
    path = save_tiff([letter.page] * 3, tmp_path / "letter.tif")
    engine = TesseractEngine(workers=1)
    try:
        reading = asyncio.create_task(engine.read(path))
        for _ in range(2):
            first_pool = engine._pool
            await until_busy(engine)
            kill_workers(engine)
            for _ in range(100):  # wait for the engine to notice and make its next pool
                if engine._pool is not first_pool or reading.done():
                    break
                await asyncio.sleep(0.05)
        with pytest.raises(UnreadableDocument) as refused:
            await reading
        assert refused.value.reason_code == "ocr_crashed"
    finally:
        engine.close()
