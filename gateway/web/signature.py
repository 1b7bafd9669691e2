"""``X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``.

As Stripe and Svix sign webhooks: the timestamp is signed with the body, so a captured request
cannot be replayed outside the tolerance window (5 minutes by default); several ``v1=`` values
and several secrets per form allow rotation without downtime; comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass

HEADER = "X-Gateway-Signature"


class SignatureError(Exception):
    """Why a signature was refused (said to the caller: it reveals no secret)."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_header(value: str | None) -> SignatureHeader:
    if not value:
        raise SignatureError(f"missing {HEADER} header")
    timestamp, signatures = None, []
    for item in value.split(","):
        name, _, content = item.strip().partition("=")
        if name == "t" and content.isdigit():
            timestamp = int(content)
        elif name == "v1" and content:
            signatures.append(content.strip().lower())
    if timestamp is None or not signatures:
        raise SignatureError(f"malformed {HEADER} header: expected t=<seconds>,v1=<hex>")
    return SignatureHeader(timestamp, tuple(signatures))


def check_timestamp(header: SignatureHeader, tolerance_s: int, now: float | None = None) -> None:
    skew = abs((now if now is not None else time.time()) - header.timestamp)
    if skew > tolerance_s:
        raise SignatureError("signature timestamp outside the accepted window (replay?)")


class BodyVerifier:
    """Fed the raw body chunk by chunk (it may be large); then says whether a secret signed it."""

    def __init__(self, header: SignatureHeader, secrets: Sequence[bytes]) -> None:
        self._header = header
        prefix = f"{header.timestamp}.".encode()
        self._macs = [hmac.new(secret, prefix, hashlib.sha256) for secret in secrets]

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def verify(self) -> None:
        expected = [mac.hexdigest() for mac in self._macs]
        matched = False
        for given in self._header.signatures:
            for candidate in expected:
                matched |= hmac.compare_digest(given, candidate)
        if not matched:
            raise SignatureError("signature does not match the body")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a form sends (used by tests, benchmarks and client examples)."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"
