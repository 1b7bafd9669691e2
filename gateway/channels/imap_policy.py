"""What a mailbox's import follows: its folders, batch size, waits, limits, and whether several
gateways share it (``imap_shared``). Built from the settings' ``ImapAccount``; tests pass their
own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class MailboxPolicy:
    processed: str = "Processed"
    quarantine: str = "Quarantine"
    batch: int = 100
    poll_interval_s: float = 30.0
    idle_s: float = 290.0  # under the 29 minutes of RFC 2177, and NAT timeouts
    backlog_after: timedelta = timedelta(days=2)
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_backoff_s: float = 60.0
    shared: bool = False  # several gateways on this mailbox: see ``imap_shared``
    claim_timeout_s: float = 900.0
