"""Secrets of the installation that every process (and every replica) must share: the key of
the email links, the pepper of the contact hashes. ``InstallationSecrets``: created once by
whichever process needs one first, the same bytes for all afterwards.

``FileSecrets`` keeps them as files of their own under ``GATEWAY_DATA_DIR/state`` (readable by
the gateway's user alone); ``gateway.store.postgres.secrets`` in the shared database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

LINK_KEY = "link-key"
CONTACT_PEPPER = "contact-pepper"


class InstallationSecrets(Protocol):
    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The secret ``name``; made with ``make`` and kept if there is none yet (two processes
        asking at once both get the one kept)."""
        ...


class FileSecrets:
    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        return await asyncio.to_thread(self._secret, name, make)

    def _secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        path = self._folder / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # two processes at once: one file wins
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as file:
                    file.write(make())
                    file.flush()
                    os.fsync(file.fileno())
        return path.read_bytes()
