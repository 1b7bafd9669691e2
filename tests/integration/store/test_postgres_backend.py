"""The shared database as an operator meets it: migrations applied once whoever starts first,
``intake-gateway state migrate``, a database newer than the code, and bad settings stopping
start-up with one line naming ``GATEWAY_STATE_URL``."""

from __future__ import annotations

import asyncio
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.errors import ConfigurationError
from gateway.store.postgres.database import Database, migrations
from tests.support.kafka import free_port

pytestmark = pytest.mark.integration


async def test_replicas_starting_at_once_apply_each_migration_once(postgres_url: str) -> None:
    opened = await asyncio.gather(*(Database.open(postgres_url) for _ in range(4)))
    try:
        rows = await opened[0].fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
    finally:
        for database in opened:
            await database.close()
    assert [(row[0], row[1]) for row in rows] == [(m.version, m.name) for m in migrations()]


async def test_a_database_migrated_by_a_newer_gateway_stops_start_up(postgres_url: str) -> None:
    database = await Database.open(postgres_url)
    await database.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    await database.close()
    with pytest.raises(ConfigurationError, match=r"^GATEWAY_STATE_URL: .*newer gateway.*9999"):
        await Database.open(postgres_url)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_bad_settings_stop_start_up_with_one_line_naming_the_setting(
    postgres_url: str,
) -> None:
    parts = urlsplit(postgres_url)
    cases = {
        with_password(postgres_url, "wrong"): "refused the credentials",
        urlunsplit(parts._replace(path="/no_such_db")): "no such database",
        postgres_url.replace(f":{parts.port}/", f":{free_port()}/"): "cannot connect",
    }
    for url, reason in cases.items():
        with pytest.raises(ConfigurationError) as refused:
            await Database.open(url)
        line = str(refused.value)
        assert line.startswith("GATEWAY_STATE_URL: ")
        assert reason in line
        assert "\n" not in line
        assert "wrong" not in line  # no password in the message


async def run_cli(url: str, *arguments: str) -> tuple[int, str, str]:
    environment = {**os.environ, "GATEWAY_STATE_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_state_migrate_applies_what_is_missing_then_says_up_to_date(
    postgres_url: str,
) -> None:
    code, out, _ = await run_cli(postgres_url, "state", "migrate")
    assert code == 0
    names = [f"{m.version:04d}_{m.name}" for m in migrations()]
    assert out.splitlines() == [f"applied\t{name}" for name in names]
    code, out, _ = await run_cli(postgres_url, "state", "migrate")
    assert (code, out.splitlines()) == (0, [f"up to date\t{names[-1]}"])
    connection = await asyncpg.connect(postgres_url)
    try:
        tables = {
            row[0]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await connection.close()
    assert {"idempotency", "notifications", "duplicate_index", "rate_bucket"} <= tables


async def test_state_migrate_with_a_wrong_password_says_so_in_one_line(postgres_url: str) -> None:
    code, out, err = await run_cli(with_password(postgres_url, "wrong"), "state", "migrate")
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "intake-gateway: configuration error: GATEWAY_STATE_URL: the database refused the "
        "credentials"
    ]
