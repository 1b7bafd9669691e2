"""Where the web-form webhook's CPU goes at saturation: a flame graph and a table of shares.

    python -m bench.flame [--duration 10]

The gateway as ``bench.peer`` runs it (``run --only http``, one HTTP worker, embedded stores,
everything on), warmed up, then saturated (64 connections, each posting its next distinct
submission once answered) twice: once sampled by py-spy into ``docs/webhook-flame.svg`` (an
interactive SVG: hover a frame for its share), once into collapsed stacks for the table written
to docs/benchmarks.md (the functions holding the most samples, themselves and what they call).
py-spy samples, 200 times a second without pausing the process (``--nonblocking``), the thread
holding the GIL (``--gil``): where Python code spends the CPU (2.3 of the 3.2 ms a submission
costs are user time; the rest is the kernel's, mostly file system calls). A thread waiting in
``fsync`` holds no GIL and is not counted; native code called with the GIL held is charged to
the Python frame calling it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, private_broker, write_section
from bench.webhook_backends import Servers, Side, saturated, signed
from gateway.admin import create_topics
from gateway.runtime import run_loop
from gateway.settings import KafkaSettings

FLAME = REPO / "docs" / "webhook-flame.svg"
SATURATION_CEILING = 2_000  # submissions/s prepared for a run (more than the gateway takes)
TOP = 15


def sampled(pid: int, seconds: float, output: Path, form: str) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)]
    command += ["--duration", str(round(seconds)), "--rate", "200", "--nonblocking", "--gil"]
    command += ["--format", form, "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def saturate(side: Side, seconds: float, tag: str) -> float:
    """Accepted/s of a closed loop of distinct submissions over ``seconds``."""
    requests = signed(int(SATURATION_CEILING * seconds), tag)
    return await saturated(side.ports[0], requests, seconds, tag)


def profile(side: Side, seconds: float, output: Path, form: str) -> float:
    sampler = sampled(side.gateway_pids[0], seconds, output, form)
    rate = run_loop(saturate(side, seconds + 1, f"flame{form[:3]}{time.time_ns() % 10**9}"))
    _, errors = sampler.communicate(timeout=120)
    if sampler.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-500:]}")
    return rate


def shares(collapsed: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]], int]:
    """(function, share of samples) in which it runs or is on the stack, and in which it runs
    itself; the number of samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return [], [], 0
    return (
        [(name, count / total) for name, count in inclusive.most_common(TOP * 3)],
        [(name, count / total) for name, count in own.most_common(TOP)],
        total,
    )


def _short(frame: str) -> str:
    """``function (path/to/module.py:line)`` as ``function (module.py)``."""
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({module})" if module else name


def table(
    rate: float, inclusive: list[tuple[str, float]], own: list[tuple[str, float]], samples: int
) -> str:
    below = [(name, share) for name, share in inclusive if share < 0.9][:TOP]
    lines = [
        "## Where the webhook's CPU goes (`bench/flame.py`)",
        "",
        f"The gateway saturated by distinct signed submissions ({rate:,.0f} accepted/s while "
        f"sampled; one HTTP worker, embedded stores, encryption at rest on), sampled by py-spy "
        f"({samples:,} samples of the thread holding the GIL: Python's CPU). The flame graph: "
        "[docs/webhook-flame.svg](webhook-flame.svg).",
        "",
        "| on the stack (itself and what it calls) | share | | running itself | share |",
        "| --- | ---: | --- | --- | ---: |",
    ]
    for index in range(TOP):
        left = below[index] if index < len(below) else ("", 0.0)
        right = own[index] if index < len(own) else ("", 0.0)
        lines.append(
            f"| `{left[0]}` | {left[1]:.0%} | | `{right[0]}` | {right[1]:.0%} |"
            if left[0] and right[0]
            else f"| `{left[0]}` | {left[1]:.0%} | | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        private_broker() as bootstrap,
        contextlib.ExitStack() as stack,
    ):
        run_loop(create_topics(KafkaSettings(bootstrap=bootstrap)))
        side = Servers(stack, bootstrap, Path(scratch)).side("embedded")
        run_loop(saturate(side, 3, f"warm{time.time_ns() % 10**9}"))
        profile(side, args.duration, FLAME, "flamegraph")
        collapsed = Path(scratch) / "stacks.txt"
        rate = profile(side, args.duration, collapsed, "raw")
        inclusive, own, samples = shares(collapsed)
    text = table(rate, inclusive, own, samples)
    print(text)
    write_section("webhook-flame", text)


if __name__ == "__main__":
    main()
