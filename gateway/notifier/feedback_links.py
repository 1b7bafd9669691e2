"""Satisfaction links: ``GET /v1/feedback?token=...`` in the final notice (valid 30 days).

As the email links (``tokens``): a Fernet token (signed: a forged or altered one is refused;
its issue time gives the expiry without state; it reveals nothing to whoever reads the link),
over the reference and the notice's language only. Its key is derived from the link key for
this use alone, so a satisfaction link is no email link and no email link a satisfaction one.
One answer per complaint is kept in the state store by the reference (the web route), so every
link of a complaint (the "answered" and the "closed" notices) is used up by the first answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import TokenRefused

DAY_S = 86_400
PURPOSE = b"intake-gateway satisfaction links v1"


@dataclass(frozen=True)
class FeedbackClaim:
    """What a token says: the person behind this complaint may say how it went."""

    reference: str
    language: str | None


class FeedbackLinks:
    def __init__(self, link_key: bytes, valid_days: int = 30) -> None:
        derived = hmac.new(link_key, PURPOSE, hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._ttl_s = valid_days * DAY_S

    def issue(self, reference: str, language: str | None = None, at: int | None = None) -> str:
        """A link's token; ``at``: its issue time, seconds since the epoch (tests)."""
        payload = json.dumps({"r": reference, "l": language}).encode()
        return self._fernet.encrypt_at_time(payload, _now(at)).decode("ascii")

    def read(self, token: str, now: int | None = None) -> FeedbackClaim:
        """The claim of a token still valid; ``TokenRefused`` ``expired`` (with its claim) or
        ``invalid``. ``now``: seconds since the epoch (tests)."""
        try:
            plain = self._fernet.decrypt_at_time(token.encode("ascii"), self._ttl_s, _now(now))
            return _claim(plain)
        except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError):
            pass
        try:
            expired = _claim(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError):
            raise TokenRefused("invalid") from None
        raise TokenRefused("expired", expired)


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _claim(plain: bytes) -> FeedbackClaim:
    payload = json.loads(plain)
    language = payload.get("l")
    return FeedbackClaim(
        reference=str(payload["r"]), language=language if isinstance(language, str) else None
    )
