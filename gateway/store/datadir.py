"""The data folder is the gateway's alone: ``GATEWAY_DATA_DIR`` mode 0700, what is in it 0600.

Everything the gateway keeps on disk (objects, SQLite files, secrets, letters, the dev broker's
data) is under it. ``private_process`` (the command line calls it first) sets the process's
umask to 077: every file made from then on is 0600, every folder 0700, in this process and the
servers it starts. ``private_data_dir`` runs before anything is opened: it makes the folder if
it is missing (0700), and refuses one other users can open, with one line naming it. The
folder's mode is what keeps others out of the files of earlier versions (0644) that lie in it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from gateway.errors import ConfigurationError

PRIVATE_UMASK = 0o077


def private_process() -> None:
    """Every file this process (and what it starts) makes is its user's alone."""
    os.umask(PRIVATE_UMASK)


def private_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` (0700) or check it is no one else's to open (ConfigurationError)."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(data_dir.stat().st_mode)
    except OSError as exc:
        msg = f"GATEWAY_DATA_DIR: cannot make {data_dir}: {exc.strerror or exc}"
        raise ConfigurationError(msg) from None
    if mode & 0o077:
        seen = "readable by" if mode & 0o044 else "open to"
        msg = f"GATEWAY_DATA_DIR: {data_dir} is {seen} other users (mode {mode:04o}): chmod 700 it"
        raise ConfigurationError(msg)


@contextlib.contextmanager
def ordinary_umask() -> Iterator[None]:
    """Umask 022 for a while: for what runs outside the data folder as other users (the dev
    mailbox's Dovecot, whose processes drop to its own users and must read its files)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)
