"""A throw-away Dovecot IMAP server (Debian's dovecot-imapd) on loopback, in one folder.

Started as root with its own config (a plain-text user file, Maildir), stopped by its own master
process id; ``stop``/``start`` keep the mail, so tests can take the server away mid-batch.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aioimaplib
from pydantic import SecretStr

from gateway.settings import ImapSettings
from tests.support.kafka import free_port
from tests.support.tls import TlsFiles

USER, PASSWORD = "complaints", "secret"

PASSWORD_DB = """passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}"""
# Tokens checked against an OAuth 2.0 introspection endpoint (RFC 7662), as for a provider such
# as Keycloak or WSO2; see doc.dovecot.org "Open Authentication v2.0 database".
OAUTH2_DB = """passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}}"""
OAUTH2_CONF = """introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
mail_location = maildir:{dir}/mail/%u
default_internal_user = dovecot
default_login_user = dovenull
default_internal_group = dovecot
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
{passdb}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={dir}/home/%u
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


# Dovecot 2.3's own list less CONDSTORE and QRESYNC (which implies it): a server on which a
# shared mailbox cannot be claimed by keyword.
WITHOUT_CONDSTORE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES"
    " THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN"
    " NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH"
    " LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+"
    " NOTIFY SPECIAL-USE"
)


@dataclass
class Dovecot:
    """``tls``: STARTTLS on ``port`` and TLS from the first byte on ``tls_port``;
    ``oauth2_introspection``: XOAUTH2 logins checked at that URL instead of passwords;
    ``imap_capability``: what the server announces instead of its own list (Dovecot's setting
    of that name), e.g. ``WITHOUT_CONDSTORE``."""

    directory: Path
    port: int
    tls_port: int = 0

    @property
    def config(self) -> Path:
        return self.directory / "dovecot.conf"

    @classmethod
    def create(
        cls,
        tls: TlsFiles | None = None,
        oauth2_introspection: str | None = None,
        imap_capability: str | None = None,
    ) -> Dovecot:
        """A new server in its own folder under /tmp (the login process, running as dovenull,
        must be able to reach it: pytest's tmp_path is private to root)."""
        directory = Path(tempfile.mkdtemp(prefix="dovecot-"))
        if shutil.which("dovecot") is None:
            raise RuntimeError(
                "dovecot not installed: scripts/setup --tests installs dovecot-imapd"
            )
        server = cls(directory, free_port(), free_port() if tls else 0)
        for sub in ("run", "state", "mail", "home"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        shutil.chown(directory / "mail", "dovecot", "dovecot")
        shutil.chown(directory / "home", "dovecot", "dovecot")
        directory.chmod(0o755)
        (directory / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        ssl = (
            f"ssl = yes\nssl_cert = <{tls.certificate}\nssl_key = <{tls.key}" if tls else "ssl = no"
        )
        if oauth2_introspection:
            (directory / "oauth2.conf.ext").write_text(OAUTH2_CONF.format(url=oauth2_introspection))
        config = CONFIG.format(
            dir=directory,
            port=server.port,
            tls_port=server.tls_port,
            ssl=ssl,
            mechanisms="xoauth2 oauthbearer" if oauth2_introspection else "plain login",
            passdb=(OAUTH2_DB if oauth2_introspection else PASSWORD_DB).format(dir=directory),
        )
        if imap_capability is not None:
            config += f"imap_capability = {imap_capability}\n"
        server.config.write_text(config)
        server.start()
        return server

    def start(self) -> None:
        subprocess.run(["dovecot", "-c", str(self.config)], check=True, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"dovecot did not listen on {self.port}: see {self.directory}/dovecot.log"
        )

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def stop(self) -> None:
        pid_file = self.directory / "run" / "master.pid"
        if not pid_file.exists():
            return
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def account(server: Dovecot) -> ImapSettings:
    return ImapSettings(
        host="127.0.0.1", port=server.port, user=USER, password=SecretStr(PASSWORD), tls=False
    )


async def append(server: Dovecot, *messages: bytes, mailbox: str = "INBOX") -> None:
    client = aioimaplib.IMAP4("127.0.0.1", server.port)
    await client.wait_hello_from_server()
    assert (await client.login(USER, PASSWORD)).result == "OK"
    for message in messages:
        response = await client.append(message, mailbox=mailbox)
        assert response.result == "OK", response
    await close_client(client)


async def count(server: Dovecot, mailbox: str) -> int:
    client = aioimaplib.IMAP4("127.0.0.1", server.port)
    await client.wait_hello_from_server()
    await client.login(USER, PASSWORD)
    response = await client.select(mailbox)
    await close_client(client)
    return next(int(line.split()[0]) for line in response.lines if line.endswith(b"EXISTS"))


async def with_keyword(server: Dovecot, mailbox: str, keyword: str) -> int:
    """How many messages of the folder carry this keyword."""
    client = aioimaplib.IMAP4("127.0.0.1", server.port)
    await client.wait_hello_from_server()
    await client.login(USER, PASSWORD)
    await client.select(mailbox)
    response = await client.uid_search(f"KEYWORD {keyword}", charset=None)
    await close_client(client)
    return len(response.lines[0].split())


def simple_mail(message_id: str, subject: str, body: str) -> bytes:
    return (
        f"From: Marie Tremblay <marie@example.org>\r\nTo: plaintes@office.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 -0500\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


async def close_client(client: aioimaplib.IMAP4) -> None:
    await client.logout()
    client.protocol.transport.close()
