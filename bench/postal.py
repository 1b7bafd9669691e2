"""Postal channel throughput (pages/minute) vs the ``tesseract`` command line on the same pages
in the same run, and character accuracy against ground truth.

    python -m bench.postal [--copies 4] [--runs 2]

Pages: the shared generator's three letters (``../shared/corpus/postal/make_letters.py``: 300
dpi, rotated ±1.5°, noise, JPEG), each in ``--copies`` variants (one pixel differs, so each is
a new file). Baseline: ``tesseract page.jpg stdout -l fra+eng --psm 3``, one process per core
with ``OMP_THREAD_LIMIT=1``, as a well-tuned script would run it. Channel: ``PostalChannel``
reading the same files end to end (claim store, OCR in its process pool, orientation check,
normalizers, Kafka acknowledgement, move to processed/). Accuracy: 1 - Levenshtein(truth, text)
/ len(truth), whitespace collapsed, on the channel's text. Targets: ratio >= 0.9, accuracy >=
98% on this clean-scan set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import percentile, private_broker, write_section
from gateway.admin import create_topics
from gateway.channels.postal import PostalChannel
from gateway.components import Components
from gateway.logs import configure_logging
from gateway.normalizers.language import warm_up
from gateway.ocr.tesseract import TesseractEngine
from gateway.publisher import KafkaPublisher
from gateway.runtime import run_loop
from gateway.settings import GatewaySettings, KafkaSettings
from tests.support.letters import save_jpeg, scanned_letters

CORES = os.cpu_count() or 1


def pages(folder: Path, copies: int) -> list[tuple[Path, str]]:
    """(file, ground truth) for each page variant."""
    made = []
    for copy in range(copies):
        for letter in scanned_letters():
            page = letter.page.copy()
            page.putpixel((copy, 0), 0)  # a new file each copy, same text
            made.append((save_jpeg(page, folder / f"{letter.key}-{copy}.jpg"), letter.ground_truth))
    return made


@dataclass(frozen=True)
class Run:
    pages_per_minute: float
    page_seconds: list[float]  # time to read each page, from its start (no queueing)


def cli_run(files: list[Path]) -> Run:
    """Pages per minute of the tesseract command line, one process per core: a core that
    finishes a page starts the next at once (as ``xargs -P`` would)."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def read(path: Path) -> float:
        began = time.perf_counter()
        subprocess.run(
            ["tesseract", str(path), "stdout", "-l", "fra+eng", "--psm", "3"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - began

    started = time.perf_counter()
    with ThreadPoolExecutor(CORES) as cores:
        times = list(cores.map(read, files))
    return Run(len(files) / (time.perf_counter() - started) * 60, times)


async def channel_run(
    bootstrap: str, files: list[Path], data_dir: Path, at_once: int | None = None
) -> Run:
    """The channel on ``files``, as many at once as it takes them (``files_at_once``: one
    more than its OCR processes), or ``at_once`` (the latency run: one per core, so that a
    page's time is its own, not its wait for a core)."""
    inbox = files[0].parent
    settings = GatewaySettings.model_validate(
        {"kafka": {"bootstrap": bootstrap}, "data_dir": data_dir, "postal": {"inbox": inbox}}
    )
    async with KafkaPublisher(settings.kafka) as publisher:
        components = await Components.open(settings, publisher)
        engine = TesseractEngine(CORES)
        channel = PostalChannel(
            settings.postal, components.intake, components.claims, components.state, engine
        )
        await engine.read(files[0])  # its processes up and imported (a service waits once)
        await asyncio.to_thread(warm_up, settings.normalizer.languages)  # as the service does
        started = time.perf_counter()
        slots = asyncio.Semaphore(at_once or channel.files_at_once)
        times: list[float] = []

        async def one(path: Path) -> None:
            async with slots:
                began = time.perf_counter()
                await channel.process(path)
                times.append(time.perf_counter() - began)

        await asyncio.gather(*(one(path) for path in files))
        elapsed = time.perf_counter() - started
        engine.close()
        await components.close()
    return Run(len(files) / elapsed * 60, times)


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def accuracy(truth: str, text: str) -> float:
    def collapse(value: str) -> str:
        return " ".join(value.replace("\u2019", "'").split())

    truth, text = collapse(truth), collapse(text)
    return 1 - levenshtein(truth, text) / len(truth)


async def accuracies(files: list[tuple[Path, str]]) -> list[float]:
    engine = TesseractEngine(CORES)
    try:
        read = [await engine.read(path) for path, _ in files]
    finally:
        engine.close()
    return [
        accuracy(truth, "\n".join(p.text for p in pages))
        for (_, truth), pages in zip(files, read, strict=True)
    ]


def fresh_copy(made: list[tuple[Path, str]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    copies = []
    for path, _ in made:
        target = folder / path.name
        target.write_bytes(path.read_bytes())
        copies.append(target)
    return copies


async def measure(bootstrap: str, copies: int, runs: int) -> dict[str, float]:
    await create_topics(KafkaSettings(bootstrap=bootstrap))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "pages").mkdir()
        made = pages(root / "pages", copies)
        cli: list[Run] = []
        channel: list[Run] = []
        per_core: list[Run] = []
        for run in range(runs):
            files = fresh_copy(made, root / f"inbox-{run}")
            cli.append(cli_run(files))
            channel.append(await channel_run(bootstrap, files, root / f"data-{run}"))
            files = fresh_copy(made, root / f"per-core-{run}")
            per_core.append(
                await channel_run(bootstrap, files, root / f"per-core-data-{run}", CORES)
            )
        scores = await accuracies(made[:3])
    return {
        "cli": statistics.median(r.pages_per_minute for r in cli),
        "channel": statistics.median(r.pages_per_minute for r in channel),
        "cli_p50": statistics.median(percentile(r.page_seconds, 0.5) for r in cli),
        "cli_p99": statistics.median(percentile(r.page_seconds, 0.99) for r in cli),
        "channel_p50": statistics.median(percentile(r.page_seconds, 0.5) for r in per_core),
        "channel_p99": statistics.median(percentile(r.page_seconds, 0.99) for r in per_core),
        "accuracy_min": min(scores),
        "accuracy_mean": statistics.mean(scores),
        "pages": len(made),
    }


def table(result: dict[str, float], runs: int) -> str:
    ratio = result["channel"] / result["cli"]
    return (
        "## Postal OCR (`bench/postal.py`)\n\n"
        f"{result['pages']:.0f} A4 pages at 300 dpi (the shared generator's three letters, "
        f"degraded like an office scan), {CORES} cores, median of {runs} runs. Targets: ratio "
        ">= 0.9, accuracy >= 98%.\n\n"
        "The channel takes one file more than it has OCR processes (the next file's pages "
        "keep them busy while a file's tail is done). Latency: seconds from the start of a page "
        "(a one-page file) to its text (the command line) or to its event acknowledged by Kafka "
        "and the file moved (the channel, in a run of its own with one file per core), queueing "
        "for a core excluded. The channel also writes each letter's searchable PDF.\n\n"
        "| reader | pages/minute | p50 s | p99 s | ratio to baseline |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        "| `tesseract -l fra+eng --psm 3`, one process per core, OMP_THREAD_LIMIT=1 "
        f"(**baseline**) | {result['cli']:.1f} | {result['cli_p50']:.2f} | "
        f"{result['cli_p99']:.2f} | 1.00 |\n"
        "| postal channel: claim store, OCR pool (text + searchable PDF), orientation check, "
        f"normalizers, Kafka, move | {result['channel']:.1f} | {result['channel_p50']:.2f} | "
        f"{result['channel_p99']:.2f} | {ratio:.2f} |\n\n"
        f"Character accuracy of the channel's text against ground truth: mean "
        f"{result['accuracy_mean']:.2%}, lowest page {result['accuracy_min']:.2%}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    configure_logging()  # JSON lines, as in production (structlog's default renders for a console)
    with private_broker() as bootstrap:
        result = run_loop(measure(bootstrap, args.copies, args.runs))
    text = table(result, args.runs)
    print(text)
    write_section("postal", text)


if __name__ == "__main__":
    main()
