"""Files made durable on the local file system: what the embedded stores and the notifier's
folders (outbox, letters) share."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_path(path: Path) -> None:
    """A file's bytes, or a folder's entries, on disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file_atomically(path: Path, content: bytes, mode: int = 0o600) -> None:
    """``path`` holds ``content`` whole or not at all (temp file, fsync, rename, folder fsync):
    a reader (the mail room, a developer, a recovery) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as temp:
        temp.write(content)
        temp.flush()
        os.fsync(temp.fileno())
    Path(temp.name).chmod(mode)
    Path(temp.name).replace(path)
    fsync_path(path.parent)
