"""Opening an IMAP session: TLS from the first byte or STARTTLS (RFC 3501 6.2.1, RFC 8314),
then LOGIN or XOAUTH2 (Microsoft 365, Gmail). Every failure is ``ChannelUnavailable``: the
channel tries again later, and a password is never sent over a connection TLS does not cover
when TLS was asked for."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Callable
from typing import Any

import aioimaplib

from gateway.channels.oauth2 import AccessTokens
from gateway.errors import ChannelUnavailable
from gateway.settings import ImapAccount

CONNECT_TIMEOUT_S = 30
# what a dropped or stuck connection raises, everywhere the channel talks to the server
NETWORK_ERRORS = (OSError, TimeoutError, aioimaplib.Abort, aioimaplib.CommandTimeout)


_EXISTS = re.compile(rb"^\* \d+ EXISTS")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, with two things it lacks:

    - ``mail_arrived``: set by every ``* n EXISTS``. aioimaplib drops an EXISTS that comes
      during a FETCH or a MOVE (or files it under that command): mail delivered while a batch
      was being published, seen by nobody, waited for the next mail or the end of IDLE (up to
      five minutes). The channel looks at it before and after starting IDLE.
    - a failed XOAUTH2 answered as the mechanism asks: the server sends its error as a
      challenge and waits for an empty answer before it says NO (RFC 7628 3.2.3); aioimaplib
      2.0 leaves it unanswered, and the login hung until its timeout instead of failing."""

    mail_arrived = False

    def _handle_line(self, line: bytes, current_cmd: Any) -> Any:
        if _EXISTS.match(line):
            self.mail_arrived = True
        return super()._handle_line(line, current_cmd)

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if command is not None and command.name == "AUTHENTICATE":
            self.transport.write(b"\r\n")
            return
        super()._continuation(line)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


async def command(pending: object) -> aioimaplib.Response:
    """The server's answer to a command; ChannelUnavailable when it did not come or was not OK."""
    try:
        response = await pending  # type: ignore[misc]
    except NETWORK_ERRORS as exc:
        raise ChannelUnavailable(f"IMAP command failed: {exc}") from exc
    if not isinstance(response, aioimaplib.Response) or response.result != "OK":
        raise ChannelUnavailable(f"IMAP command refused: {getattr(response, 'lines', response)}")
    return response


async def search(client: aioimaplib.IMAP4, criteria: str) -> list[int]:
    """The UIDs of the selected folder's messages that match, in order."""
    response = await command(client.uid_search(criteria, charset=None))
    numbers = b" ".join(line for line in response.lines[:-1] if isinstance(line, bytes))
    return sorted(map(int, numbers.split()))


async def select(client: aioimaplib.IMAP4, folder: str, where: str) -> int:
    """Select the folder (``where``: the mailbox, for the error); its UIDVALIDITY."""
    response = await command(client.select(folder))
    for line in response.lines:
        if isinstance(line, bytes | bytearray) and (match := _UIDVALIDITY.search(line)):
            return int(match.group(1))
    raise ChannelUnavailable(f"no UIDVALIDITY for {folder} of {where}")


async def move(client: aioimaplib.IMAP4, uids: list[int], folder: str) -> None:
    """The selected folder's ``uids`` moved to ``folder`` (MOVE, else COPY, flag, EXPUNGE). A
    server refuses the whole command when some of them were expunged by another session this
    one was not yet told of (RFC 9051 EXPUNGEISSUED: another replica moved them): it is asked
    again once a NOOP brought this session up to date, and UIDs gone are then ignored."""
    try:
        await _move_once(client, uids, folder)
    except ChannelUnavailable as exc:
        if "EXPUNGEISSUED" not in str(exc):
            raise
        await command(client.noop())
        await _move_once(client, uids, folder)


async def _move_once(client: aioimaplib.IMAP4, uids: list[int], folder: str) -> None:
    uid_set = message_set(uids)
    if client.has_capability("MOVE"):
        await command(client.uid("move", uid_set, folder))
        return
    await command(client.uid("copy", uid_set, folder))
    await command(client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)"))
    await command(client.expunge())


def message_set(uids: list[int]) -> str:
    """``41,42,57``: the UIDs as a command names them."""
    return ",".join(map(str, uids))


def take_mail_arrived(client: aioimaplib.IMAP4) -> bool:
    """Whether the server announced new mail since the last call (and forget it)."""
    protocol = client.protocol
    arrived = bool(getattr(protocol, "mail_arrived", False))
    if arrived:
        protocol.mail_arrived = False
    return arrived


def tls_context(account: ImapAccount) -> ssl.SSLContext:
    """Certificates and host name checked; ``ca_file`` trusted instead of the system's CAs."""
    return ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)


async def open_session(account: ImapAccount, tokens: AccessTokens | None) -> aioimaplib.IMAP4:
    """A logged-in client; ChannelUnavailable (no socket left behind) otherwise."""
    where = f"IMAP server {account.host}:{account.port}"
    client = _Client(
        account.host or "localhost",
        account.port,
        timeout=CONNECT_TIMEOUT_S,
        ssl_context=tls_context(account) if account.tls else None,
    )
    try:
        await client.wait_hello_from_server()
        if not account.tls and account.starttls:
            await _start_tls(client, account)
        response = await _authenticate(client, account, tokens)
    except NETWORK_ERRORS as exc:  # ssl.SSLError (a certificate refused) is an OSError
        close_transport(client)
        raise ChannelUnavailable(f"{where}: {exc}") from exc
    except BaseException:  # refused, or cancelled while connecting: leave no socket behind
        close_transport(client)
        raise
    if response.result != "OK":
        close_transport(client)
        if tokens is not None:
            tokens.forget()
        raise ChannelUnavailable(f"{where}: login refused for {account.user}")
    return client


async def _start_tls(client: aioimaplib.IMAP4, account: ImapAccount) -> None:
    protocol = client.protocol
    if not client.has_capability("STARTTLS"):
        msg = f"IMAP server {account.host}:{account.port} does not offer STARTTLS"
        raise ChannelUnavailable(msg)
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), CONNECT_TIMEOUT_S)
    if response.result != "OK":
        raise ChannelUnavailable(f"IMAP server {account.host}: STARTTLS refused")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(
        protocol.transport, protocol, tls_context(account), server_hostname=account.host
    )
    await asyncio.wait_for(protocol.capability(), CONNECT_TIMEOUT_S)  # forget the plain ones


async def _authenticate(
    client: aioimaplib.IMAP4, account: ImapAccount, tokens: AccessTokens | None
) -> aioimaplib.Response:
    if account.auth == "xoauth2":
        if tokens is None:
            raise ChannelUnavailable(f"IMAP {account.user}: xoauth2 needs GATEWAY_IMAP_OAUTH2")
        return await client.xoauth2(account.user or "", await tokens.token())
    password = account.password.get_secret_value() if account.password else ""
    return await client.login(account.user or "", password)


def close_transport(client: aioimaplib.IMAP4) -> None:
    transport = getattr(client.protocol, "transport", None) if client.protocol else None
    if transport is not None:
        transport.close()
