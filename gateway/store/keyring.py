"""The master keys of encryption at rest: ``Keyring``.

``GATEWAY_ENCRYPTION_KEYS`` is a JSON object, key id -> base64 of 256 bits. The first key
encrypts (wraps each object's data key, seals each personal value of the state store); the
others only decrypt, so a key is rotated by putting a new one first and running
``intake-gateway keys rotate``. Unset, one key (id ``installation``) is generated once and kept
as an installation secret (``state/encryption-key``, or the shared database), as the link key.

At start-up (``open_keyring``) each key is checked against the check value kept for its id
among the installation secrets (AES-GCM of a constant under the key, made the first time the id
is seen): a key that is not the one first used under its id stops start-up, and so does a key
id still wrapping data keys or sealing values that the settings no longer give.

Every wrap and seal is AES-256-GCM (``cryptography``) with a random 96-bit nonce and associated
data naming what is sealed (the data key's id and object, the row and field of a value), so a
sealed value moved elsewhere does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ClaimStoreError, ConfigurationError

SETTING = "GATEWAY_ENCRYPTION_KEYS"
GENERATED_ID = "installation"
GENERATED_SECRET = "encryption-key"  # noqa: S105 (the name it is kept under)
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CHECK_PLAINTEXT = b"intake-gateway encryption key check v1"


class KeyUnavailable(ClaimStoreError):
    """Sealed with a master key the settings do not give, or the sealed bytes were altered."""


def parse_keys(value: Any) -> dict[str, str]:
    """``GATEWAY_ENCRYPTION_KEYS`` as key id -> base64 text, checked (ValueError says what is
    wrong, never quoting a key)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError:
            msg = 'not valid JSON: expected {"key-id": "<base64 of 32 bytes>", ...}'
            raise ValueError(msg) from None
    if not isinstance(value, Mapping):
        msg = 'expected a JSON object {"key-id": "<base64 of 32 bytes>", ...}'
        raise ValueError(msg)  # noqa: TRY004 (pydantic wants ValueError)
    keys: dict[str, str] = {}
    for key_id, encoded in value.items():
        if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
            msg = f"key id {str(key_id)[:64]!r}: letters, digits, '.', '_' or '-' (64 at most)"
            raise ValueError(msg)
        text = encoded.get_secret_value() if hasattr(encoded, "get_secret_value") else encoded
        if not isinstance(text, str) or len(_decode(text) or b"") != KEY_BYTES:
            msg = f"key {key_id!r}: not the base64 of 32 random bytes (256 bits)"
            raise ValueError(msg)
        keys[key_id] = text
    return keys


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text.strip())
        except (binascii.Error, ValueError):
            return None


def new_key_text() -> str:
    """A fresh master key as ``GATEWAY_ENCRYPTION_KEYS`` takes it (base64)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class MasterKey:
    id: str
    cipher: AESGCM

    @classmethod
    def of(cls, key_id: str, key: bytes) -> MasterKey:
        return cls(key_id, AESGCM(key))


class Keyring:
    """The master keys by id; ``current`` (the first) seals, every one opens."""

    def __init__(self, keys: Iterable[MasterKey]) -> None:
        self._keys = {key.id: key for key in keys}
        if not self._keys:
            raise ValueError("a keyring needs one key at least")
        self.current = next(iter(self._keys.values()))

    @classmethod
    def ephemeral(cls) -> Keyring:
        """A keyring of one random key kept nowhere (a store in memory, for tests)."""
        return cls([MasterKey.of("ephemeral", os.urandom(KEY_BYTES))])

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def seal(self, plaintext: bytes, context: bytes) -> tuple[str, bytes]:
        """(id of the current key, nonce + ciphertext + tag)."""
        nonce = os.urandom(NONCE_BYTES)
        key = self.current
        return key.id, nonce + key.cipher.encrypt(nonce, plaintext, _aad(key.id, context))

    def open(self, key_id: str, sealed: bytes, context: bytes) -> bytes:
        """What ``seal`` sealed under ``context``; KeyUnavailable if the key is not given or
        the bytes (or their context) were altered."""
        key = self._keys.get(key_id)
        if key is None:
            raise KeyUnavailable(f"sealed with master key {key_id!r}, which {SETTING} lacks")
        try:
            return key.cipher.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(key_id, context)
            )
        except InvalidTag:
            raise KeyUnavailable(
                f"sealed bytes altered (or not sealed by key {key_id!r})"
            ) from None

    def seal_text(self, text: str, context: bytes) -> tuple[str, str]:
        """A value of a state row sealed: (key id, base64 text)."""
        key_id, sealed = self.seal(text.encode(), context)
        return key_id, base64.b64encode(sealed).decode()

    def open_text(self, key_id: str, sealed: str, context: bytes) -> str:
        return self.open(key_id, base64.b64decode(sealed), context).decode()


def _aad(key_id: str, context: bytes) -> bytes:
    return b"intake-gateway|" + key_id.encode() + b"|" + context


SecretKeeper = Callable[[str, Callable[[], bytes]], Awaitable[bytes]]
InUse = Callable[[], Awaitable[set[str]]]  # the master key ids sealing something now


async def open_keyring(
    configured: Mapping[str, str], secret: SecretKeeper, in_use: InUse
) -> Keyring:
    """The keyring of the settings (or the generated key), checked: ConfigurationError with one
    line naming ``GATEWAY_ENCRYPTION_KEYS`` for a wrong key or a key still needed but not given.
    ``secret``: ``InstallationSecrets.secret``; ``in_use``: the master key ids sealing data now."""
    keys = [MasterKey.of(key_id, _decode(text) or b"") for key_id, text in configured.items()]
    used = await in_use()
    if not keys or (GENERATED_ID in used and GENERATED_ID not in configured):
        generated = await secret(GENERATED_SECRET, lambda: os.urandom(KEY_BYTES))
        keys.append(MasterKey.of(GENERATED_ID, generated))
    for key in keys:
        await _check(key, secret)
    given = {key.id for key in keys}
    missing = sorted(used - given)
    if missing:
        msg = (
            f"{SETTING}: key {missing[0]!r} still seals stored data but is not given; give it "
            "again (after the key that encrypts) until 'intake-gateway keys rotate' is done"
        )
        raise ConfigurationError(msg)
    return Keyring(keys)


async def _check(key: MasterKey, secret: SecretKeeper) -> None:
    def make() -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + key.cipher.encrypt(nonce, _CHECK_PLAINTEXT, key.id.encode())

    kept = await secret(f"key-check-{key.id}", make)
    try:
        key.cipher.decrypt(kept[:NONCE_BYTES], kept[NONCE_BYTES:], key.id.encode())
    except InvalidTag:
        source = "the generated key" if key.id == GENERATED_ID else f"key {key.id!r}"
        msg = (
            f"{SETTING}: {source} is not the key this installation first used under that id "
            "(its check value does not open): a wrong or mistyped key"
        )
        raise ConfigurationError(msg) from None
