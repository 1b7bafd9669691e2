"""Access tokens for XOAUTH2 mailboxes, from an OAuth 2.0 token endpoint (RFC 6749).

Microsoft 365 and Gmail no longer take a mailbox password over IMAP: the gateway asks the
office's identity provider for a short-lived access token (the refresh-token grant, or the
client-credentials grant for an application given access to the mailbox) and keeps it until a
minute before it expires. The client secret and the tokens are never logged.
"""

from __future__ import annotations

import time

import httpx

from gateway.errors import ChannelUnavailable
from gateway.settings import OAuth2Client

EARLY_S = 60.0  # renew this long before the token expires
DEFAULT_LIFETIME_S = 300.0  # when the endpoint does not say (expires_in is only recommended)


class AccessTokens:
    def __init__(self, client: OAuth2Client, timeout_s: float = 30.0) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._token: str | None = None
        self._until = 0.0

    async def token(self) -> str:
        """A valid access token: the one kept, or a new one."""
        if self._token is None or time.monotonic() >= self._until:
            self._token, lifetime = await self._request()
            self._until = time.monotonic() + max(0.0, lifetime - EARLY_S)
        return self._token

    def forget(self) -> None:
        """The server refused the token (revoked, or expired early): ask for a new one next."""
        self._token = None

    async def _request(self) -> tuple[str, float]:
        client = self._client
        form = {
            "client_id": client.client_id,
            "client_secret": client.client_secret.get_secret_value(),
        }
        if client.refresh_token is not None:
            form |= {
                "grant_type": "refresh_token",
                "refresh_token": client.refresh_token.get_secret_value(),
            }
        else:
            form["grant_type"] = "client_credentials"
        if client.scope:
            form["scope"] = client.scope
        where = f"OAuth2 token endpoint {client.token_url}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as http:
                answer = await http.post(str(client.token_url), data=form)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{where}: {type(exc).__name__}") from None
        return _parse(answer, where)


def _parse(answer: httpx.Response, where: str) -> tuple[str, float]:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise ChannelUnavailable(f"{where}: refused ({answer.status_code} {error})".rstrip())
    try:
        lifetime = float(body.get("expires_in", DEFAULT_LIFETIME_S))
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_S
    return str(body["access_token"]), lifetime
