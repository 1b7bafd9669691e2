"""Email-validation links: signed, 5 days, reveal nothing."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.errors import ConfigurationError, TokenRefused
from gateway.notifier.tokens import EmailTokens, link_key
from gateway.store.secrets import FileSecrets

KEY = Fernet.generate_key()


def test_a_token_reads_back_what_it_was_issued_for() -> None:
    tokens = EmailTokens(KEY)
    claim = tokens.read(tokens.issue("PL-HP69-9MYG-AHW6", "marie@example.org", "fr"))
    assert (claim.reference, claim.email, claim.language) == (
        "PL-HP69-9MYG-AHW6",
        "marie@example.org",
        "fr",
    )


def test_a_token_reveals_neither_the_address_nor_the_reference() -> None:
    token = EmailTokens(KEY).issue("PL-HP69-9MYG-AHW6", "marie@example.org")
    decoded = base64.urlsafe_b64decode(token + "==")
    for secret in (b"marie", b"PL-HP69", b"example.org"):
        assert secret not in decoded
        assert secret.decode() not in token


def test_an_altered_or_foreign_token_is_invalid() -> None:
    tokens = EmailTokens(KEY)
    token = tokens.issue("PL-HP69-9MYG-AHW6", "marie@example.org")
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    foreign = EmailTokens(Fernet.generate_key()).issue("PL-HP69-9MYG-AHW6", "x@example.org")
    for bad in (altered, foreign, "", "not-a-token", "é"):
        with pytest.raises(TokenRefused) as refused:
            tokens.read(bad)
        assert refused.value.reason == "invalid"
        assert refused.value.claim is None


def test_after_five_days_a_token_is_expired_but_still_names_its_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = EmailTokens(KEY, valid_days=5)
    token = tokens.issue("PL-HP69-9MYG-AHW6", "marie@example.org")
    later = time.time() + 5 * 86_400 + 60
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenRefused) as refused:
        tokens.read(token)
    assert refused.value.reason == "expired"
    assert refused.value.claim is not None
    assert refused.value.claim.email == "marie@example.org"


async def test_the_installation_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = await link_key(None, FileSecrets(state))
    assert await link_key(None, FileSecrets(state)) == first
    assert (state / "link-key").stat().st_mode & 0o777 == 0o600
    assert await link_key("configured", FileSecrets(tmp_path)) == b"configured"
    with pytest.raises(ConfigurationError, match="GATEWAY_NOTIFIER_TOKEN_KEY"):
        EmailTokens(b"too-short")
