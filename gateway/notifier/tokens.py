"""Email-validation links: ``GET /v1/verify/email?token=...`` (valid 5 days, single use).

A token is a Fernet token (AES-128-CBC + HMAC-SHA256, from ``cryptography``) over the reference,
the address and a random id: it is signed (a forged or altered token is refused), it carries its
issue time (expiry without state), and it reveals nothing to whoever reads the link. Single use is
kept in the state store by the token's id. The key comes from ``GATEWAY_NOTIFIER_TOKEN_KEY`` or is
created once in the data folder, so the notifier and the HTTP service of one installation share it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import ConfigurationError, TokenRefused
from gateway.store.secrets import LINK_KEY, InstallationSecrets

DAY_S = 86_400


@dataclass(frozen=True)
class EmailClaim:
    """What a token says: this address belongs to the person behind this complaint."""

    token_id: str
    reference: str
    email: str
    language: str | None


class EmailTokens:
    def __init__(self, key: bytes, valid_days: int = 5) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            msg = "GATEWAY_NOTIFIER_TOKEN_KEY: not a Fernet key (32 url-safe base64-encoded bytes)"
            raise ConfigurationError(msg) from None
        self._ttl_s = valid_days * DAY_S
        self.link_key = key  # other links' keys derive from it (``feedback_links``)

    @staticmethod
    def new_key() -> bytes:
        return Fernet.generate_key()

    def issue(self, reference: str, email: str, language: str | None = None) -> str:
        payload = {"i": secrets.token_hex(8), "r": reference, "e": email, "l": language}
        return self._fernet.encrypt(json.dumps(payload).encode()).decode("ascii")

    def read(self, token: str) -> EmailClaim:
        """The claim of a token still valid; ``TokenRefused`` (with the claim if only expired)."""
        try:
            return _claim(self._fernet.decrypt(token.encode("ascii"), ttl=self._ttl_s))
        except (InvalidToken, UnicodeEncodeError, ValueError):
            pass
        try:
            expired = _claim(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise TokenRefused("invalid") from None
        raise TokenRefused("expired", expired)


def _claim(plain: bytes) -> EmailClaim:
    payload = json.loads(plain)
    return EmailClaim(
        token_id=str(payload["i"]),
        reference=str(payload["r"]),
        email=str(payload["e"]),
        language=payload.get("l"),
    )


async def link_key(configured: str | None, secrets: InstallationSecrets) -> bytes:
    """The configured key, else the installation's own (created once, shared by every process
    and replica)."""
    if configured:
        return configured.encode("ascii")
    return (await secrets.secret(LINK_KEY, Fernet.generate_key)).strip()
