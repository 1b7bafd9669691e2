"""The master keys: GATEWAY_ENCRYPTION_KEYS read and checked, a generated key kept once, and a
wrong or missing key stopping start-up with one line naming the variable."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.settings import load_settings
from gateway.store.keyring import (
    GENERATED_ID,
    Keyring,
    KeyUnavailable,
    MasterKey,
    new_key_text,
    open_keyring,
)
from gateway.store.secrets import FileSecrets


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


async def none_in_use() -> set[str]:
    return set()


def in_use(*ids: str):
    async def used() -> set[str]:
        return set(ids)

    return used


async def test_given_keys_in_the_setting_then_the_first_seals_and_every_one_opens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    new, old = new_key_text(), new_key_text()
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", f'{{"2027": "{new}", "2026": "{old}"}}')
    keys = {k: v.get_secret_value() for k, v in load_settings().encryption_keys.items()}
    assert list(keys) == ["2027", "2026"]
    secrets = FileSecrets(tmp_path / "state")
    ring = await open_keyring(keys, secrets.secret, none_in_use)
    assert ring.current.id == "2027"
    before = await open_keyring({"2026": old}, secrets.secret, none_in_use)
    key_id, sealed = before.seal(b"data key", b"context")
    assert ring.open(key_id, sealed, b"context") == b"data key"
    with pytest.raises(KeyUnavailable):
        ring.open(key_id, sealed, b"another context")


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '["a list"]',
        '{"k1": "c2hvcnQ="}',  # 5 bytes
        '{"bad id!": "' + base64.b64encode(b"k" * 32).decode() + '"}',
        '{"k1": 42}',
    ],
)
def test_given_a_bad_setting_then_one_line_names_the_variable_and_never_the_key(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GATEWAY_ENCRYPTION_KEYS", value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("GATEWAY_ENCRYPTION_KEYS: ")
    assert "\n" not in message
    assert "c2hvcnQ" not in message
    assert base64.b64encode(b"k" * 32).decode() not in message


async def test_given_no_setting_then_one_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    secrets = FileSecrets(tmp_path / "state")
    first = await open_keyring({}, secrets.secret, none_in_use)
    again = await open_keyring({}, secrets.secret, none_in_use)
    assert first.current.id == again.current.id == GENERATED_ID
    key_id, sealed = first.seal(b"x", b"c")
    assert again.open(key_id, sealed, b"c") == b"x"
    kept = tmp_path / "state" / "encryption-key"
    assert kept.stat().st_mode & 0o777 == 0o600
    # set later, the generated key still opens what it sealed while anything needs it
    later = await open_keyring({"k1": new_key_text()}, secrets.secret, in_use(GENERATED_ID))
    assert later.current.id == "k1"
    assert later.open(key_id, sealed, b"c") == b"x"


async def test_given_another_key_under_a_known_id_then_start_up_stops(tmp_path: Path) -> None:
    secrets = FileSecrets(tmp_path / "state")
    await open_keyring({"k1": new_key_text()}, secrets.secret, none_in_use)
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_ENCRYPTION_KEYS: key 'k1' is not"):
        await open_keyring({"k1": new_key_text()}, secrets.secret, none_in_use)


async def test_given_a_key_still_sealing_data_left_out_then_start_up_stops(tmp_path: Path) -> None:
    secrets = FileSecrets(tmp_path / "state")
    with pytest.raises(ConfigurationError, match="key 'old' still seals stored data"):
        await open_keyring({"new": new_key_text()}, secrets.secret, in_use("new", "old"))


def test_given_a_keyring_then_values_sealed_as_text_open_only_in_their_context() -> None:
    ring = Keyring([MasterKey.of("k1", b"1" * 32)])
    key_id, text = ring.seal_text("marie@example.org", b"contacts|PL-1|email")
    assert "marie" not in text
    assert ring.open_text(key_id, text, b"contacts|PL-1|email") == "marie@example.org"
    with pytest.raises(KeyUnavailable):
        ring.open_text(key_id, text, b"contacts|PL-2|email")
