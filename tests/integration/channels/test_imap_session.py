"""Moving messages on a real Dovecot while another session moves some of the same (two replicas
on one mailbox)."""

from __future__ import annotations

import aioimaplib
import pytest

from gateway.channels.imap_session import command, move
from tests.support.dovecot import (
    PASSWORD,
    USER,
    Dovecot,
    append,
    close_client,
    count,
    simple_mail,
)

pytestmark = pytest.mark.integration


async def session(server: Dovecot) -> aioimaplib.IMAP4:
    client = aioimaplib.IMAP4("127.0.0.1", server.port)
    await client.wait_hello_from_server()
    await command(client.login(USER, PASSWORD))
    await command(client.select("INBOX"))
    return client


async def test_a_move_of_messages_another_session_moved_meanwhile_moves_the_rest(
    dovecot: Dovecot,
) -> None:
    """The server refuses the whole MOVE (NO [EXPUNGEISSUED]) when one of its messages was
    moved by another session this one was not told of yet; the rest is moved all the same."""
    await append(
        dovecot, *(simple_mail(f"<m{n}@example.org>", "Plainte", "Bonjour") for n in range(3))
    )
    ours, theirs = await session(dovecot), await session(dovecot)
    try:
        await command(theirs.create("Processed"))
        await move(theirs, [1], "Processed")  # the other replica's
        await move(ours, [1, 2], "Processed")  # 1 is gone from under this session
    finally:
        await close_client(ours)
        await close_client(theirs)
    assert (await count(dovecot, "INBOX"), await count(dovecot, "Processed")) == (1, 2)
