"""Choosing the claim-check store from the settings, and the start-up check of the file store."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.settings import GatewaySettings
from gateway.store.claims import FileClaimStore
from gateway.store.objects import check, claim_store_from_settings
from gateway.store.s3 import S3ClaimStore

SHA = "ab" * 32


def test_given_no_object_store_url_then_files_under_the_data_dir(data_dir: Path) -> None:
    store = claim_store_from_settings(GatewaySettings(data_dir=data_dir))
    assert isinstance(store, FileClaimStore)
    assert store.uri_of(SHA) == (data_dir / "objects" / "ab" / "ab" / SHA).resolve().as_uri()


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("s3://complaints", f"objects/ab/ab/{SHA}"),
        ("s3://complaints/prod/intake/", f"prod/intake/objects/ab/ab/{SHA}"),
    ],
)
def test_given_an_s3_url_then_keys_under_its_prefix(url: str, key: str) -> None:
    settings = GatewaySettings.model_validate(
        {
            "object_store_url": url,
            "s3": {"endpoint_url": "http://127.0.0.1:8333/", "server_side_encryption": "AES256"},
        }
    )
    store = claim_store_from_settings(settings)
    assert isinstance(store, S3ClaimStore)
    assert store.bucket == "complaints"
    assert store.key_of(SHA) == key
    assert store.uri_of(SHA) == f"s3://complaints/{key}"
    assert store.endpoint == "http://127.0.0.1:8333"


def test_given_an_unknown_server_side_encryption_then_the_setting_is_named() -> None:
    settings = GatewaySettings.model_validate(
        {"object_store_url": "s3://complaints", "s3": {"server_side_encryption": "rot13"}}
    )
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_S3_SERVER_SIDE_ENCRYPTION: "):
        claim_store_from_settings(settings)


async def test_given_a_data_dir_that_cannot_hold_objects_then_the_check_names_it(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    store = claim_store_from_settings(GatewaySettings(data_dir=not_a_folder))
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_DATA_DIR: ") as refused:
        await check(store)
    assert "\n" not in str(refused.value)


async def test_given_a_writable_data_dir_then_the_check_passes(data_dir: Path) -> None:
    await check(claim_store_from_settings(GatewaySettings(data_dir=data_dir)))
    assert (data_dir / "objects").is_dir()
