"""A folder instead of SMTP and Twilio, for ``intake-gateway dev`` without a mail server: each
email is written as ``.eml`` (exactly the MIME an SMTP server would get) and each SMS as ``.txt``
in ``GATEWAY_DATA_DIR/outbox/``, so a developer sees what people would receive."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.smtp import compose
from gateway.store.claims import write_file_atomically


class FolderOutbox:
    def __init__(self, folder: Path, medium: Medium, sender: str) -> None:
        self.medium = medium
        self._folder = folder
        self._sender = sender

    async def send(self, message: OutgoingMessage) -> str:
        if self.medium == Medium.EMAIL:
            content = compose(message, self._sender)
            name = f"{message.reference}-{message.notification_id[:8]}.eml"
        else:
            content = f"To: {message.recipient}\n\n{message.content.sms}\n".encode()
            name = f"{message.reference}-{message.notification_id[:8]}.sms.txt"
        return await asyncio.to_thread(self._write, name, content)

    def _write(self, name: str, content: bytes) -> str:
        path = self._folder / name
        write_file_atomically(path, content)
        return str(path)

    async def close(self) -> None:
        return None
