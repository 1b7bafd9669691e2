"""Which process holds a claim, and whether that process is gone.

A claim (``StateStore.claim_key``) names its holder as ``boot:pidns:pid:start``: the machine's
boot id (``/proc/sys/kernel/random/boot_id``), the PID namespace (two containers on one host
each have theirs), the process id and its start time in clock ticks since boot (a pid used again
by another process has another start). A process that sees the same boot id and PID namespace
sees the holder in ``/proc``: if the holder is not there (killed, crashed), its claim is taken
over at once rather than after its lease. Holders on other machines or in other namespaces are
unknown here: their claims end with their lease.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

UNKNOWN = "unknown"


@lru_cache(maxsize=1)
def _machine() -> str:
    """This boot of this machine, and this PID namespace."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return UNKNOWN
    return f"{boot}:{namespace}"


def _start_ticks(pid: int) -> str | None:
    """The process's start time (field 22 of ``/proc/PID/stat``), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


_THIS: dict[int, str] = {}  # by pid: a forked worker is another holder than its parent


def this_process() -> str:
    pid = os.getpid()
    if pid not in _THIS:
        _THIS[pid] = f"{_machine()}:{pid}:{_start_ticks(pid) or UNKNOWN}"
    return _THIS[pid]


def is_gone(holder: str | None) -> bool:
    """True only when ``holder`` ran on this machine, in this PID namespace, and has ended."""
    if not holder:
        return False
    rest, _, started = holder.rpartition(":")
    machine, _, pid = rest.rpartition(":")  # the PID namespace itself holds a colon
    if machine != _machine() or machine == UNKNOWN or not pid.isdigit():
        return False
    return _start_ticks(int(pid)) != started
