"""Key locks: one holder per key across tasks and processes; a dead holder frees its keys."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.errors import StateStoreError
from gateway.store import keylocks
from gateway.store.keylocks import FileKeyLocks

HOLDER = """
import asyncio, sys, time
from pathlib import Path
from gateway.store.keylocks import FileKeyLocks
async def main():
    locks = FileKeyLocks(Path(sys.argv[1]))
    async with locks.holding(sys.argv[2]):
        print("held", flush=True)
        await asyncio.sleep(float(sys.argv[3]))
asyncio.run(main())
"""


class Holder:
    """Another process holding ``key`` for ``seconds``; started, it holds the key."""

    def __init__(self, path: Path, key: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), key, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def wait(self) -> None:
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no clean-up of any kind
        self.wait()


def holder(path: Path, key: str, seconds: float) -> Holder:
    return Holder(path, key, seconds)


async def test_given_a_key_held_by_another_process_then_it_waits_until_released(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.lock"
    other = holder(path, "form:contact\nkey-1", 0.6)
    locks = FileKeyLocks(path)
    started = time.monotonic()
    async with locks.holding("form:contact\nkey-1"):
        waited = time.monotonic() - started
    other.wait()
    assert waited >= 0.3
    await locks.close()


async def test_given_another_key_then_no_wait(tmp_path: Path) -> None:
    path = tmp_path / "keys.lock"
    other = holder(path, "form:contact\nkey-1", 2.0)
    locks = FileKeyLocks(path)
    started = time.monotonic()
    async with locks.holding("form:contact\nkey-2"):
        assert time.monotonic() - started < 0.5
    other.kill()
    await locks.close()


async def test_given_the_holder_is_killed_then_the_key_is_free(tmp_path: Path) -> None:
    path = tmp_path / "keys.lock"
    other = holder(path, "k", 60.0)
    other.kill()
    locks = FileKeyLocks(path)
    async with asyncio.timeout(2), locks.holding("k"):
        pass
    await locks.close()


async def test_given_tasks_of_one_process_then_one_at_a_time(tmp_path: Path) -> None:
    locks = FileKeyLocks(tmp_path / "keys.lock")
    inside, most = 0, 0

    async def use() -> None:
        nonlocal inside, most
        async with locks.holding("same"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(use() for _ in range(5)))
    assert most == 1
    await locks.close()


async def test_given_two_keys_on_one_byte_then_the_first_out_keeps_the_other_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keylocks, "_offset", lambda _key: 7)
    path = tmp_path / "keys.lock"
    locks = FileKeyLocks(path)
    first_out = asyncio.Event()

    async def hold(key: str, until: asyncio.Event | None) -> None:
        async with locks.holding(key):
            if until is None:
                await asyncio.sleep(0.01)
            else:
                await until.wait()
        if until is None:
            first_out.set()

    release = asyncio.Event()
    longer = asyncio.create_task(hold("a", release))
    await asyncio.sleep(0.01)
    await hold("b", None)
    await first_out.wait()
    # "a" still holds byte 7: another process cannot take it
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 7)\n"
        "except BlockingIOError: print('locked')\nelse: print('free')",
        str(path),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await probe.communicate()
    assert output.decode().strip() == "locked"
    release.set()
    await longer
    await locks.close()


async def test_given_a_holder_that_never_lets_go_then_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.lock"
    other = holder(path, "stuck", 30.0)
    locks = FileKeyLocks(path)
    with pytest.raises(StateStoreError, match="still running"):
        async with locks.holding("stuck", timeout_s=0.2):
            pass
    other.kill()
    await locks.close()
