"""``intake-gateway dev --mailbox``: a complaints mailbox on this machine, to try the email channel.

Two parts, both on loopback and both gone when dev stops:

- a throw-away Dovecot IMAP server (Debian's ``dovecot-imapd``), in a folder of its own under
  the system's temporary directory, with one user whose INBOX the email channel reads;
- a mail drop: an SMTP listener (aiosmtpd) that files every message it is sent into that INBOX
  over IMAP ``APPEND``, so any mail client, ``swaks`` or Python's ``smtplib`` can send a
  complaint the way a person's mail would arrive.

The events it gives stay in Kafka; the mail itself is thrown away with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioimaplib
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from gateway.errors import ConfigurationError
from gateway.settings import GatewaySettings, ImapSettings
from gateway.store.datadir import ordinary_umask

log = structlog.get_logger(__name__)

USER = "complaints"
ADDRESS = "complaints@localhost"
DEFAULT_DROP_PORT = 2525
START_TIMEOUT_S = 20.0

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{dir}/mail/%u
default_internal_user = {internal_user}
default_login_user = {login_user}
default_internal_group = {internal_group}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={internal_user} gid={internal_group} home={dir}/home/%u
}}
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
  mailbox Quarantine {{
    auto = create
  }}
}}
"""

INSTALL_HINT = (
    "dev --mailbox needs Dovecot's IMAP server: apt-get install dovecot-imapd "
    "(Debian, Ubuntu; the package is named dovecot elsewhere)"
)


def require_dovecot() -> None:
    """One line saying how to install Dovecot when it is not there."""
    if shutil.which("dovecot") is None:
        raise ConfigurationError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Dovecot:
    """One Dovecot master process serving ``USER``'s mailbox on ``port``."""

    def __init__(self, folder: Path, port: int, password: str) -> None:
        self.folder = folder
        self.port = port
        self.password = password

    @classmethod
    def configure(cls, folder: Path) -> Dovecot:
        server = cls(folder, free_port(), secrets.token_urlsafe(12))
        for sub in ("run", "state", "mail", "home"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # its login process runs as another user and must reach the folder
        if os.geteuid() == 0:  # root: Dovecot's own users, as Debian sets them up
            users = {"internal_user": "dovecot", "login_user": "dovenull"}
            users["internal_group"] = "dovecot"
            for sub in ("mail", "home"):
                shutil.chown(folder / sub, "dovecot", "dovecot")
        else:  # a person's own account runs every part
            me = getpass.getuser()
            users = {"internal_user": me, "login_user": me, "internal_group": me}
        (folder / "users").write_text(f"{USER}:{{PLAIN}}{server.password}\n")
        config = CONFIG.format(dir=folder, port=server.port, **users)
        (folder / "dovecot.conf").write_text(config)
        return server

    async def start(self) -> None:
        # Its errors go to a file: the daemon it forks keeps its standard error open, so a
        # pipe would never reach its end.
        errors_path = self.folder / "start-errors.log"
        with errors_path.open("wb") as errors:
            process = await asyncio.create_subprocess_exec(
                "dovecot", "-c", str(self.folder / "dovecot.conf"), stderr=errors
            )
            await process.wait()
        if process.returncode != 0:
            first = errors_path.read_text(errors="replace").strip().splitlines()[:1]
            msg = f"dovecot did not start: {first[0] if first else process.returncode}"
            raise ConfigurationError(msg)
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    return
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        pid_file = self.folder / "run" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT_S):
                while pid_file.exists():  # noqa: ASYNC110 (a daemon's exit sends us no event)
                    await asyncio.sleep(0.05)

    def account(self) -> ImapSettings:
        return ImapSettings(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=SecretStr(self.password),
            tls=False,
        )


class MailDrop:
    """aiosmtpd's handler: each message it is sent goes into the mailbox's INBOX."""

    def __init__(self, server: Dovecot) -> None:
        self._server = server

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or b""
        try:
            await append(self._server, content)
        except (OSError, aioimaplib.Abort, aioimaplib.Error, TimeoutError) as exc:
            log.warning("mailbox.append_failed", error=str(exc))
            return "451 Requested action aborted: the local mailbox did not take it"
        log.info("mailbox.received", size=len(content))
        return "250 Message accepted into the local mailbox"


async def append(server: Dovecot, message: bytes) -> None:
    client = aioimaplib.IMAP4("127.0.0.1", server.port, timeout=10)
    await client.wait_hello_from_server()
    try:
        login = await client.login(USER, server.password)
        if login.result != "OK":
            raise aioimaplib.Error(f"login refused: {login.lines[:1]}")
        stored = await client.append(message, mailbox="INBOX")
        if stored.result != "OK":
            raise aioimaplib.Error(f"APPEND refused: {stored.lines[:1]}")
    finally:
        with contextlib.suppress(aioimaplib.Abort, aioimaplib.Error, OSError, TimeoutError):
            await client.logout()


async def _listen(handler: MailDrop) -> asyncio.Server:
    """The mail drop on ``DEFAULT_DROP_PORT``, or any free port when that one is taken."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return SMTP(handler, hostname="localhost", ident="intake-gateway dev mail drop")

    try:
        return await loop.create_server(protocol, "127.0.0.1", DEFAULT_DROP_PORT)
    except OSError:
        return await loop.create_server(protocol, "127.0.0.1", 0)


@contextlib.asynccontextmanager
async def local_mailbox(settings: GatewaySettings) -> AsyncIterator[GatewaySettings]:
    """Start the mailbox and its mail drop; yields the settings whose email channel reads it."""
    require_dovecot()
    folder = Path(tempfile.mkdtemp(prefix="intake-gateway-mailbox-"))
    with ordinary_umask():  # outside the data folder; Dovecot's own users read its files
        server = Dovecot.configure(folder)
    try:
        with ordinary_umask():
            await server.start()
        drop = await _listen(MailDrop(server))
        try:
            port = _port_of(drop)
            print(
                f"intake-gateway dev: mailbox: send complaints to {ADDRESS} by SMTP at "
                f"127.0.0.1:{port} (read over IMAP at 127.0.0.1:{server.port}; "
                "a throw-away mailbox)",
                file=sys.stderr,
            )
            yield settings.model_copy(update={"imap": server.account()})
        finally:
            drop.close()
            await drop.wait_closed()
    finally:
        await server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _port_of(server: asyncio.Server) -> int:
    address: Any = server.sockets[0].getsockname()
    return int(address[1])
