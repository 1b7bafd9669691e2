"""A claim's holder: this process is alive, an ended one is gone, another machine's is unknown
(never taken for gone)."""

from __future__ import annotations

import subprocess

from gateway.store import process_identity
from gateway.store.process_identity import is_gone, this_process


def holder_of(pid: int) -> str:
    return f"{process_identity._machine()}:{pid}:{process_identity._start_ticks(pid)}"


def test_this_process_is_not_gone() -> None:
    assert not is_gone(this_process())


def test_a_process_is_gone_once_it_ended_not_before() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        holder = holder_of(child.pid)
        assert not is_gone(holder)
    finally:
        child.kill()
        child.wait()
    assert is_gone(holder)


def test_a_pid_used_again_by_another_process_is_gone() -> None:
    """Same pid, another start time: not the holder."""
    machine, pid, started = this_process().rsplit(":", 2)
    assert is_gone(f"{machine}:{pid}:{int(started) + 1}")


def test_a_holder_elsewhere_or_unknown_is_never_taken_for_gone() -> None:
    assert not is_gone("another-boot:pid:[4026531836]:1:1")
    assert not is_gone(None)
    assert not is_gone("")
    assert not is_gone("not a holder")
