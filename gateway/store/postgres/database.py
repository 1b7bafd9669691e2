"""One PostgreSQL database shared by every replica (``GATEWAY_STATE_URL``), through asyncpg.

``Database.open`` makes a connection pool and brings the schema up to date: the migrations
shipped in ``gateway/store/migrations`` (``NNNN_name.sql``, applied in order, each in its own
transaction, recorded in ``schema_migrations``) under an advisory lock, so replicas starting at
once apply each migration once. A database migrated by a newer gateway (a version this one does
not know) stops start-up: running old code on a new schema could lose data.

Errors: at start, one line naming ``GATEWAY_STATE_URL`` (unreachable, credentials refused, no
such database); afterwards ``StateStoreError`` (the caller answers 503 or retries), never an
asyncpg exception.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from gateway.errors import ConfigurationError, StateStoreError, StateStoreUnavailable

log = structlog.get_logger(__name__)

SETTING = "GATEWAY_STATE_URL"
MIGRATION_LOCK = 0x1A7A_6E01  # pg_advisory_lock key of schema migrations (any fixed number)
CONNECT_TIMEOUT_S = 10.0
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# What the database or the network may throw at a running store: all become StateStoreError.
ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)
# Of those, what a restart or a lost connection throws: the same statement may work in a moment.
TRANSIENT: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)
CONNECT_ERRORS: tuple[type[Exception], ...] = (*ERRORS, ValueError)  # ValueError: a bad URL
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migrations shipped with this version of the gateway, in order."""
    found = []
    for entry in resources.files("gateway.store").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found, key=lambda migration: migration.version)


class Database:
    """A pool of connections to the shared database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(
        cls, url: str, max_connections: int = 10, migrate: bool = True, holds_locks: bool = False
    ) -> Database:
        """Connect (and migrate); ConfigurationError naming the setting when that fails.
        ``holds_locks``: its connections hold advisory locks (a connection back in the pool
        lets go of any it still holds)."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=max_connections,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=30,
                reset=_unlock_and_roll_back if holds_locks else _roll_back,
            )
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            raise ConfigurationError(f"{SETTING}: the database refused the credentials") from None
        except asyncpg.InvalidCatalogNameError:
            raise ConfigurationError(f"{SETTING}: no such database on that server") from None
        except CONNECT_ERRORS as exc:
            raise ConfigurationError(f"{SETTING}: cannot connect ({_reason(exc)})") from None
        database = cls(pool)
        if migrate:
            try:
                await database.migrate()
            except BaseException:
                await pool.close()
                raise
        return database

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[str]:
        """Apply the migrations this database lacks; their names."""
        async with self.connection() as connection:
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                return await _apply(connection)
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection of the pool for the block; its errors become StateStoreError."""
        try:
            async with self.pool.acquire() as connection:
                yield connection
        except ERRORS as exc:
            raise state_error(exc) from exc

    async def fetchrow(self, sql: str, *arguments: Any) -> asyncpg.Record | None:
        async with self.connection() as connection:
            row: asyncpg.Record | None = await connection.fetchrow(sql, *arguments)
            return row

    async def fetch(self, sql: str, *arguments: Any) -> list[asyncpg.Record]:
        async with self.connection() as connection:
            rows: list[asyncpg.Record] = await connection.fetch(sql, *arguments)
            return rows

    async def fetchval(self, sql: str, *arguments: Any) -> Any:
        async with self.connection() as connection:
            return await connection.fetchval(sql, *arguments)

    async def execute(self, sql: str, *arguments: Any) -> None:
        async with self.connection() as connection:
            await connection.execute(sql, *arguments)

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        async with self.connection() as connection:
            await connection.executemany(sql, rows)


async def _apply(connection: Connection) -> list[str]:
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in await connection.fetch("SELECT version FROM schema_migrations")}
    known = migrations()
    newest = max((migration.version for migration in known), default=0)
    if done and max(done) > newest:
        raise ConfigurationError(
            f"{SETTING}: the database was migrated by a newer gateway (schema {max(done)},"
            f" this version knows up to {newest}): upgrade this gateway"
        )
    applied = []
    for migration in known:
        if migration.version in done:
            continue
        async with connection.transaction():
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("state.migrated", version=migration.version, name=migration.name)
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied


async def _roll_back(connection: asyncpg.Connection) -> None:
    """A connection back in the pool: no transaction left open. (asyncpg's own reset runs four
    statements on every release, for advisory locks, cursors, LISTEN and session settings the
    store does not use: 28 of the 37 statements of a submission, measured by bench/webhook.py.)"""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def _unlock_and_roll_back(connection: asyncpg.Connection) -> None:
    """The same, and any advisory lock a cancelled holder could not release is let go."""
    await _roll_back(connection)
    await connection.execute("SELECT pg_advisory_unlock_all()")


def state_error(exc: BaseException) -> StateStoreError:
    """What the callers see of an asyncpg or network error: unavailable for now, or an error."""
    reason = f"state database: {_reason(exc)}"
    return StateStoreUnavailable(reason) if isinstance(exc, TRANSIENT) else StateStoreError(reason)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
