"""The shared backends of the benchmarks: the test suite's throw-away PostgreSQL and SeaweedFS
(S3) servers, the ``GATEWAY_`` settings that point a gateway at them, and what a run costs them
(CPU of their processes, statements counted by ``pg_stat_statements``).

PostgreSQL runs as ``tests/support/postgres.py`` starts it: ``fsync`` and ``full_page_writes``
off (a test server) unless ``durable=True``, plus ``pg_stat_statements`` loaded, which the
benchmarks read to count the statements of each submission."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Bucket, S3Server

DATABASE = "bench"
DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
STATEMENTS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "1000"}


@dataclass
class SharedState:
    """One PostgreSQL server and the database the gateways share."""

    server: PostgresServer
    url: str
    durable: bool

    def statement_calls(self) -> dict[str, int]:
        """Calls of each statement run in the database so far (BEGIN and COMMIT included)."""
        rows = self.server.psql(
            "SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
            "JOIN pg_database d ON d.oid = dbid WHERE d.datname = current_database()",
            DATABASE,
        )
        calls: dict[str, int] = {}
        for row in rows.splitlines():
            count, _, query = row.partition("|")
            calls[query] = calls.get(query, 0) + int(count)
        return calls

    def pids(self) -> list[int]:
        return [self.server.pid] if self.server.pid is not None else []


@contextlib.contextmanager
def shared_state(*, durable: bool = False) -> Iterator[SharedState]:
    """A PostgreSQL server (fsync off unless ``durable``) with an empty database ``bench``."""
    server = PostgresServer.create(settings={**STATEMENTS, **(DURABLE if durable else {})})
    try:
        url = server.create_database(DATABASE)
        server.psql("CREATE EXTENSION pg_stat_statements", DATABASE)
        yield SharedState(server, url, durable)
    finally:
        server.destroy()


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """A SeaweedFS S3 server (``weed mini``) as the tests run it."""
    server = S3Server.create()
    try:
        yield server
    finally:
        server.destroy()


def objects_settings(bucket: S3Bucket) -> dict[str, str]:
    """The ``GATEWAY_`` variables of a gateway keeping its objects in this bucket."""
    return {
        "GATEWAY_OBJECT_STORE_URL": bucket.object_store_url,
        "GATEWAY_S3_ENDPOINT_URL": bucket.endpoint,
        "GATEWAY_S3_REGION": bucket.region,
        "GATEWAY_S3_ACCESS_KEY_ID": bucket.access_key,
        "GATEWAY_S3_SECRET_ACCESS_KEY": bucket.secret_key,
    }


def _tree(pid: int) -> list[int]:
    """A process and its descendants (those alive now)."""
    found, pending = [], [pid]
    while pending:
        each = pending.pop()
        found.append(each)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{each}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of the processes under ``roots`` (their live descendants included)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in roots:
        for pid in _tree(root):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
