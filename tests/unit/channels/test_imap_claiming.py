"""Where the email service has a shared mailbox's messages claimed, as the settings say."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.channels.imap import EmailService, ImapChannel
from gateway.channels.imap_claims import MailboxClaiming
from gateway.runtime import email_service
from gateway.settings import load_settings


def _channels(settings: Any) -> list[ImapChannel]:
    components = SimpleNamespace(settings=settings, intake=None, claims=None, state=None)
    service = email_service(components)  # type: ignore[arg-type]
    assert isinstance(service, EmailService)
    return service._channels  # what the service was given


@pytest.mark.parametrize(
    ("state_url", "claiming"),
    [
        (None, MailboxClaiming.SERVER_KEYWORD),
        ("postgresql://gateway:secret@db.example/intake", MailboxClaiming.DATABASE),
    ],
)
def test_given_a_shared_state_then_every_mailbox_claims_in_it_else_on_the_server(
    tmp_path: Path, state_url: str | None, claiming: MailboxClaiming
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        state_url=state_url,
        imap={
            "host": "imap.example.org",
            "shared": True,
            "mailboxes": [{"host": "imap.example.org", "mailbox": "Plaintes", "shared": True}],
        },
    )
    channels = _channels(settings)
    assert len(channels) == 2
    assert {channel.claiming for channel in channels} == {claiming}
