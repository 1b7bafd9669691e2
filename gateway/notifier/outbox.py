"""A folder instead of SMTP and Twilio, for ``intake-gateway dev`` without a mail server: each
email is written as ``.eml`` (exactly the MIME an SMTP server would get) and each SMS as ``.txt``
in ``GATEWAY_DATA_DIR/outbox/``, so a developer sees what people would receive. An email's id
is its ``Message-ID``, as with SMTP, so a status update follows its acknowledgement here too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.events.notification import Medium
from gateway.notifier import OutgoingMessage
from gateway.notifier.smtp import compose, message_id
from gateway.store.durable import write_file_atomically


class FolderOutbox:
    def __init__(self, folder: Path, medium: Medium, sender: str) -> None:
        self.medium = medium
        self._folder = folder
        self._sender = sender

    async def send(self, message: OutgoingMessage) -> str:
        stem = f"{message.reference}-{message.notification_id[:8]}"
        if self.medium == Medium.EMAIL:
            await asyncio.to_thread(self._write, f"{stem}.eml", compose(message, self._sender))
            return message_id(message, self._sender)
        content = f"To: {message.recipient}\n\n{message.content.sms}\n".encode()
        return await asyncio.to_thread(self._write, f"{stem}.sms.txt", content)

    def _write(self, name: str, content: bytes) -> str:
        path = self._folder / name
        write_file_atomically(path, content)
        return str(path)

    async def close(self) -> None:
        return None
