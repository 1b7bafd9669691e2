"""Who an operator is: a bearer token of ``GATEWAY_ADMIN_TOKENS`` (the JSON routes), or, on the
office's page, a session cookie got by pasting that token once.

- Bearer tokens are compared in constant time, every admin's and every consumer's each time
  (``consumer_of``): no token or a wrong one is 401, a case system's (consumer's) token 403.
- The session cookie says who and since when, signed with that admin's own token
  (HMAC-SHA256): nothing is kept on the server, any replica with the same settings reads it,
  and changing or removing the admin's token ends their sessions. ``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` when the page is served over HTTPS; valid ``SESSION_S``.
- Forms carry a CSRF token derived from the session (HMAC of its nonce with the same key): a
  page of another site can neither read it nor, with ``SameSite=Strict``, send the cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import SecretStr

from gateway.settings import GatewaySettings
from gateway.web.objects import consumer_of
from gateway.web.problems import ProblemError, problem_responses

COOKIE = "gateway_admin_session"
SESSION_S = 8 * 3600


@dataclass(frozen=True)
class AdminSession:
    admin: str
    issued: int
    nonce: str
    csrf: str


_MEANINGS = {
    401: "No admin's bearer token (none, or not one of GATEWAY_ADMIN_TOKENS)",
    403: "A case system's token, or a page's form no longer valid (CSRF)",
    404: "No dead-letter record of that id",
    409: "The record was already redriven or dismissed, or is being redriven",
    422: "The record cannot be redriven (or Kafka refuses its event)",
}


def admin_problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of the admin routes: problem documents, described for them."""
    responses = problem_responses(*statuses)
    for status, meaning in _MEANINGS.items():
        if status in responses:
            responses[status] = {**responses[status], "description": meaning}
    return responses


def bearer_admin(request: Request, settings: GatewaySettings) -> str:
    """The admin whose bearer token the request carries; 401 or 403 problem otherwise."""
    header = request.headers.get("authorization")
    admin = consumer_of(header, settings.admin_tokens)
    consumer = consumer_of(header, settings.consumer_tokens)  # compared whatever the above
    if admin is not None:
        return admin
    if consumer is not None:
        raise ProblemError(
            403, "forbidden", "An admin's token is needed", "this is a case system's token"
        )
    raise ProblemError(
        401,
        "unauthorized",
        "An admin's bearer token is needed",
        headers={"WWW-Authenticate": 'Bearer realm="admin"'},
    )


def admin_of_token(token: str, tokens: dict[str, SecretStr]) -> str | None:
    """The admin a pasted token belongs to (constant-time, every token compared)."""
    return consumer_of(f"Bearer {token.strip()}", tokens) if token.strip() else None


def new_session_cookie(admin: str, tokens: dict[str, SecretStr]) -> str:
    issued, nonce = int(time.time()), secrets.token_urlsafe(16)
    name = base64.urlsafe_b64encode(admin.encode()).decode().rstrip("=")
    payload = f"{name}.{issued}.{nonce}"
    return f"{payload}.{_mac(tokens[admin], 'session', payload)}"


def session_of(request: Request, tokens: dict[str, SecretStr]) -> AdminSession | None:
    """The valid session the request's cookie carries, or None (none, forged, expired, or the
    admin's token changed since)."""
    parts = request.cookies.get(COOKIE, "").split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    name, issued, nonce, mac = parts
    try:
        admin = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    token = tokens.get(admin)
    if token is None or not 0 <= time.time() - int(issued) <= SESSION_S:
        return None
    if not hmac.compare_digest(mac, _mac(token, "session", f"{name}.{issued}.{nonce}")):
        return None
    return AdminSession(admin, int(issued), nonce, _mac(token, "csrf", nonce))


def check_csrf(session: AdminSession, given: str) -> None:
    if not hmac.compare_digest(given.encode(), session.csrf.encode()):
        raise ProblemError(403, "csrf", "This form is no longer valid", "reload the page")


def secure_cookie(request: Request, settings: GatewaySettings) -> bool:
    """Served over HTTPS: directly, or under the public HTTPS address (behind a proxy)."""
    public = settings.public_url
    return request.url.scheme == "https" or (
        public.scheme == "https" and request.url.hostname == public.host
    )


def _mac(token: SecretStr, purpose: str, payload: str) -> str:
    key = token.get_secret_value().encode()
    return hmac.new(key, f"{purpose}\n{payload}".encode(), hashlib.sha256).hexdigest()
