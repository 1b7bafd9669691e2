"""Stored objects as the gateway reads them: on disk or in the bucket they are sealed
(encryption at rest), so a test reads them through the gateway's own store."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import GatewaySettings
from gateway.store.backends import open_state_backend
from gateway.store.catalog import sha256_of_uri
from gateway.store.objects import claim_store_from_settings, encrypted_claim_store


async def stored_bytes(settings: GatewaySettings | Path, uri_or_sha256: str | None) -> bytes:
    """The plaintext of the object a URI (or a SHA-256) names, in the stores of ``settings``
    (or of a data folder's embedded stores)."""
    if isinstance(settings, Path):
        settings = GatewaySettings.model_validate({"data_dir": settings})
    sha256 = sha256_of_uri(uri_or_sha256)
    assert sha256 is not None, uri_or_sha256
    backend = await open_state_backend(settings)
    try:
        store = claim_store_from_settings(settings)
        await store.open()
        try:
            claims = await encrypted_claim_store(store, settings, backend)
            return await claims.get(sha256)
        finally:
            await store.close()
    finally:
        await backend.close()
