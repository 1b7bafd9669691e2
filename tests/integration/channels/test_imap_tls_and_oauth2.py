"""The IMAP channel's ways in, against a real Dovecot: STARTTLS and TLS with the office's CA,
a certificate or a server it must refuse, and XOAUTH2 with tokens from an OAuth 2.0 provider
(Dovecot checking each token at the provider's introspection endpoint)."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.channels.imap import ImapChannel
from gateway.errors import ChannelUnavailable
from gateway.events import topics
from gateway.intake import Intake
from gateway.normalizers import ComplaintNormalizer, NormalizerConfig
from gateway.publisher import KafkaPublisher
from gateway.settings import ImapAccount, KafkaSettings, OAuth2Client
from gateway.store.claims import FileClaimStore
from gateway.store.sqlite_duplicates import SqliteDuplicateIndex
from gateway.store.sqlite_state import SqliteStateStore
from tests.support.consumer import TopicReader
from tests.support.dovecot import PASSWORD, USER, Dovecot, append, simple_mail
from tests.support.oauth2 import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Provider, oauth2_provider
from tests.support.tls import TlsFiles, make_tls_files

pytestmark = pytest.mark.integration

Parts = tuple[Intake, FileClaimStore, SqliteStateStore]


@pytest.fixture
async def parts(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Parts]:
    state = SqliteStateStore(tmp_path / "state")
    async with KafkaPublisher(kafka_settings) as publisher:
        normalizer = ComplaintNormalizer(NormalizerConfig(), SqliteDuplicateIndex(None))
        yield Intake(normalizer, publisher, contacts=state), FileClaimStore(tmp_path), state
    await state.close()


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path)


@pytest.fixture
def tls_dovecot(tls: TlsFiles) -> Iterator[Dovecot]:
    server = Dovecot.create(tls=tls)
    yield server
    server.destroy()


def mailbox(server: Dovecot, **how: object) -> ImapAccount:
    return ImapAccount.model_validate(
        {"host": "127.0.0.1", "port": server.port, "user": USER, "password": SecretStr(PASSWORD)}
        | how
    )


def logins(server: Dovecot) -> list[str]:
    log = (server.directory / "dovecot.log").read_text()
    return [line for line in log.splitlines() if f"Login: user=<{USER}>" in line]


async def one_mail_imported(
    server: Dovecot, how: ImapAccount, parts: Parts, bootstrap: str
) -> None:
    reader = TopicReader(bootstrap, topics.COMPLAINTS)
    await reader.mark()
    message_id = f"<{uuid.uuid4()}@example.org>"
    await deliver(server, simple_mail(message_id, "Plainte", "Toujours pas de réponse."))
    assert await ImapChannel(how, *parts).drain() == 1
    records = await reader.read(1)
    assert [json.loads(r.value)["data"]["source_message"]["id"] for r in records] == [message_id]


async def deliver(server: Dovecot, message: bytes) -> None:
    """Into the mailbox's Maildir as a delivery agent would (IMAP APPEND needs a login, which
    the XOAUTH2 server only takes with a token)."""
    folder = server.directory / "mail" / USER
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "new" / f"{uuid.uuid4().hex}.test").write_bytes(message)
    for path in (folder, *folder.rglob("*")):
        shutil.chown(path, "dovecot", "dovecot")


async def test_given_starttls_then_the_session_is_encrypted_before_the_login(
    tls_dovecot: Dovecot, tls: TlsFiles, parts: Parts, kafka_settings: KafkaSettings
) -> None:
    how = mailbox(tls_dovecot, tls=False, starttls=True, ca_file=tls.ca)
    await one_mail_imported(tls_dovecot, how, parts, kafka_settings.bootstrap)
    assert logins(tls_dovecot)
    assert all(", TLS" in line for line in logins(tls_dovecot)), logins(tls_dovecot)


async def test_given_tls_from_the_first_byte_then_mail_is_imported(
    tls_dovecot: Dovecot, tls: TlsFiles, parts: Parts, kafka_settings: KafkaSettings
) -> None:
    how = mailbox(tls_dovecot, port=tls_dovecot.tls_port, tls=True, ca_file=tls.ca)
    await one_mail_imported(tls_dovecot, how, parts, kafka_settings.bootstrap)
    assert all(", TLS" in line for line in logins(tls_dovecot))


async def test_given_a_certificate_of_another_authority_then_no_login_is_attempted(
    tls_dovecot: Dovecot, tmp_path: Path, parts: Parts
) -> None:
    stranger = make_tls_files(tmp_path / "other", ca_name="Someone else")
    for how in (
        mailbox(tls_dovecot, tls=False, starttls=True, ca_file=stranger.ca),
        mailbox(tls_dovecot, port=tls_dovecot.tls_port, tls=True, ca_file=stranger.ca),
        mailbox(tls_dovecot, port=tls_dovecot.tls_port, tls=True),  # the system's CAs
    ):
        with pytest.raises(ChannelUnavailable, match="certificate"):
            await ImapChannel(how, *parts).drain()
    assert logins(tls_dovecot) == []


async def test_given_starttls_asked_of_a_server_without_it_then_the_password_stays_home(
    parts: Parts,
) -> None:
    plain = Dovecot.create()  # ssl = no: no STARTTLS in its capabilities
    try:
        with pytest.raises(ChannelUnavailable, match="does not offer STARTTLS"):
            await ImapChannel(mailbox(plain, tls=False, starttls=True), *parts).drain()
        assert logins(plain) == []
        await append(plain, simple_mail("<x@example.org>", "Plainte", "Texte."))  # it works plain
    finally:
        plain.destroy()


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oauth2_provider(USER) as running:
        yield running


@pytest.fixture
def oauth2_dovecot(provider: Provider) -> Iterator[Dovecot]:
    server = Dovecot.create(oauth2_introspection=provider.introspection_url)
    yield server
    server.destroy()


def oauth2_mailbox(server: Dovecot, provider: Provider, **grant: str) -> ImapAccount:
    client = OAuth2Client(
        token_url=provider.token_url,  # type: ignore[arg-type]
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        scope="https://outlook.office365.com/.default",
        **grant,  # type: ignore[arg-type]
    )
    return ImapAccount(
        host="127.0.0.1", port=server.port, user=USER, tls=False, auth="xoauth2", oauth2=client
    )


async def test_given_xoauth2_then_a_token_from_the_provider_opens_the_mailbox(
    oauth2_dovecot: Dovecot, provider: Provider, parts: Parts, kafka_settings: KafkaSettings
) -> None:
    how = oauth2_mailbox(oauth2_dovecot, provider)
    await one_mail_imported(oauth2_dovecot, how, parts, kafka_settings.bootstrap)
    assert [request["grant_type"] for request in provider.token_requests] == ["client_credentials"]
    assert provider.token_requests[0]["scope"] == "https://outlook.office365.com/.default"
    assert "method=XOAUTH2" in logins(oauth2_dovecot)[0]


async def test_given_a_refresh_token_then_it_is_the_grant_used(
    oauth2_dovecot: Dovecot, provider: Provider, parts: Parts, kafka_settings: KafkaSettings
) -> None:
    how = oauth2_mailbox(oauth2_dovecot, provider, refresh_token=REFRESH_TOKEN)
    await one_mail_imported(oauth2_dovecot, how, parts, kafka_settings.bootstrap)
    assert provider.token_requests[0]["grant_type"] == "refresh_token"
    assert provider.token_requests[0]["refresh_token"] == REFRESH_TOKEN


async def test_given_a_revoked_token_then_the_next_session_asks_for_a_new_one(
    oauth2_dovecot: Dovecot, provider: Provider, parts: Parts
) -> None:
    channel = ImapChannel(oauth2_mailbox(oauth2_dovecot, provider), *parts)
    assert await channel.drain() == 0
    provider.revoke_all()
    with pytest.raises(ChannelUnavailable, match="login refused"):
        await channel.drain()  # the kept token is refused, and forgotten
    assert await channel.drain() == 0  # a new token
    assert len(provider.token_requests) == 2


async def test_given_a_wrong_client_secret_then_a_clear_error_without_the_secret(
    oauth2_dovecot: Dovecot, provider: Provider, parts: Parts
) -> None:
    how = oauth2_mailbox(oauth2_dovecot, provider)
    assert how.oauth2 is not None
    wrong = how.model_copy(
        update={"oauth2": how.oauth2.model_copy(update={"client_secret": SecretStr("nope")})}
    )
    with pytest.raises(ChannelUnavailable, match="refused \\(401 invalid_client\\)") as caught:
        await ImapChannel(wrong, *parts).drain()
    assert "nope" not in str(caught.value)
    assert logins(oauth2_dovecot) == []
