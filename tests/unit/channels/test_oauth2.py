"""Access tokens for XOAUTH2: kept until a minute before they expire, renewed after a refusal,
clear errors that never quote the secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from gateway.channels.oauth2 import AccessTokens
from gateway.errors import ChannelUnavailable
from gateway.settings import OAuth2Client
from tests.support.oauth2 import CLIENT_ID, CLIENT_SECRET, Provider, oauth2_provider


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oauth2_provider("complaints") as running:
        yield running


def client_of(url: str, secret: str = CLIENT_SECRET) -> OAuth2Client:
    return OAuth2Client(token_url=url, client_id=CLIENT_ID, client_secret=SecretStr(secret))  # type: ignore[arg-type]


async def test_given_a_token_then_it_is_kept_until_near_its_expiry(provider: Provider) -> None:
    tokens = AccessTokens(client_of(provider.token_url))
    first = await tokens.token()
    assert await tokens.token() == first
    assert len(provider.token_requests) == 1
    tokens.forget()
    assert await tokens.token() != first
    assert len(provider.token_requests) == 2


async def test_given_a_short_lived_token_then_each_use_asks_again(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue = provider.issue

    def short(form: dict[str, str]) -> tuple[int, dict[str, object]]:
        status, body = issue(form)
        return status, {**body, "expires_in": 30}  # under the minute kept in reserve

    monkeypatch.setattr(provider, "issue", short)
    tokens = AccessTokens(client_of(provider.token_url))
    await tokens.token()
    await tokens.token()
    assert len(provider.token_requests) == 2


async def test_given_a_refusal_or_no_endpoint_then_channel_unavailable_without_the_secret(
    provider: Provider,
) -> None:
    with pytest.raises(ChannelUnavailable, match="401 invalid_client") as refused:
        await AccessTokens(client_of(provider.token_url, "s3cr3t-value")).token()
    assert "s3cr3t-value" not in str(refused.value)
    with pytest.raises(ChannelUnavailable, match="404"):
        await AccessTokens(client_of(f"{provider.url}/elsewhere")).token()
    with pytest.raises(ChannelUnavailable, match="ConnectError"):
        await AccessTokens(client_of("http://127.0.0.1:9/token"), timeout_s=2).token()
