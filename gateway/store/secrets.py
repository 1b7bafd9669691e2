"""Secrets of the installation that every process (and every replica) must share: the key of
the email links, the pepper of the contact hashes. ``InstallationSecrets``: created once by
whichever process needs one first, the same bytes for all afterwards.

``FileSecrets`` keeps them as files of their own under ``GATEWAY_DATA_DIR/state`` (readable by
the gateway's user alone); ``gateway.store.postgres.secrets`` in the shared database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
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
        return await asyncio.to_thread(self.made_now, name, make)

    def made_now(self, name: str, make: Callable[[], bytes]) -> bytes:
        """``secret`` in this thread (a store opened before the event loop runs)."""
        path = self._folder / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=path.parent, prefix=f".{name}-", delete=False
            ) as temp:
                temp.write(make())
                temp.flush()
                os.fsync(temp.fileno())
            try:  # a link is made whole or not at all: of two processes, one file wins
                os.link(temp.name, path)
            except FileExistsError:
                pass
            finally:
                Path(temp.name).unlink()
        return path.read_bytes()


def contact_pepper(directory: Path | None) -> bytes:
    """The embedded stores' pepper of contact hashes (``directory/contact-pepper``, created once,
    readable by the gateway's user alone); a throw-away one for a store in memory."""
    if directory is None:
        return secrets.token_bytes(32)
    return FileSecrets(directory).made_now(CONTACT_PEPPER, lambda: secrets.token_bytes(32))
