"""``InstallationSecrets`` in the shared database (table ``installation_secret``)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import StateStoreError
from gateway.store.postgres.database import Database


class PostgresSecrets:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        await self._db.execute(
            "INSERT INTO installation_secret (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            name,
            make(),
        )
        kept = await self._db.fetchval(
            "SELECT value FROM installation_secret WHERE name = $1", name
        )
        if kept is None:
            raise StateStoreError(f"state database: the secret {name!r} vanished")
        return bytes(kept)
