"""The one place a claim-check store is chosen: files under ``GATEWAY_DATA_DIR/objects`` (no
``GATEWAY_OBJECT_STORE_URL``) or the S3-compatible store ``s3://bucket[/prefix]`` names, reached
with the ``GATEWAY_S3_*`` settings, and every object sealed on its way in
(``encrypted_claim_store``: ``gateway.store.encrypted``). Services receive the ``ClaimStore``
protocol."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.errors import ConfigurationError
from gateway.settings import GatewaySettings
from gateway.store.backends import StateBackend
from gateway.store.blobs import BlobStore
from gateway.store.claims import ClaimStore, FileClaimStore
from gateway.store.encrypted import EncryptedClaimStore
from gateway.store.s3 import S3ClaimStore

SERVER_SIDE_ENCRYPTION = ("AES256", "aws:kms", "aws:kms:dsse")


def claim_store_from_settings(settings: GatewaySettings) -> FileClaimStore | S3ClaimStore:
    """The store the settings name, not yet opened (``await store.open()``, then ``check``)."""
    if settings.object_store_url is None:
        return FileClaimStore(settings.data_dir)
    url = urlsplit(settings.object_store_url)
    if url.scheme != "s3" or not url.hostname:
        raise ConfigurationError(
            f"GATEWAY_OBJECT_STORE_URL: expected s3://bucket[/prefix], not {url.geturl()!r}"
        )
    s3 = settings.s3
    if s3.server_side_encryption not in (None, *SERVER_SIDE_ENCRYPTION):
        raise ConfigurationError(
            f"GATEWAY_S3_SERVER_SIDE_ENCRYPTION: one of {', '.join(SERVER_SIDE_ENCRYPTION)}, "
            f"not {s3.server_side_encryption!r}"
        )
    secret = s3.secret_access_key
    return S3ClaimStore(
        url.netloc,
        url.path,
        endpoint_url=str(s3.endpoint_url).rstrip("/") if s3.endpoint_url else None,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        server_side_encryption=s3.server_side_encryption,
    )


async def encrypted_claim_store(
    store: FileClaimStore | S3ClaimStore, settings: GatewaySettings, backend: StateBackend
) -> EncryptedClaimStore:
    """``store`` with every object sealed, under the master keys the backend opened (and
    checked: ``StateBackend.open_keyring``)."""
    return EncryptedClaimStore(
        store, backend.keyring, backend.data_keys, encrypt=settings.encryption_at_rest
    )


async def check(store: ClaimStore | BlobStore) -> None:
    """At start-up, on an opened store: the bucket exists and the credentials work, or the
    objects folder is writable. ConfigurationError, one line naming the setting at fault."""
    if isinstance(store, EncryptedClaimStore):
        store = store.inner
    if isinstance(store, S3ClaimStore | FileClaimStore):
        await store.check()
