"""Both state backends behind one fixture: every behaviour test runs on the embedded SQLite
files and on a real PostgreSQL (as FastStream runs one suite for every broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.settings import GatewaySettings
from gateway.store.backends import StateBackend, open_state_backend

# Opens one more backend on the same state: another replica (PostgreSQL) or another process
# of the same machine (SQLite), each with a data folder of its own name where that matters.
Opener = Callable[[str], Awaitable[StateBackend]]


@pytest.fixture(params=["sqlite", "postgres"])
def state_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def open_backend(
    state_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Opener]:
    url = request.getfixturevalue("postgres_url") if state_kind == "postgres" else None
    opened: list[StateBackend] = []

    async def opener(replica: str) -> StateBackend:
        data_dir = tmp_path / (replica if url else "shared")  # SQLite: one machine's files
        settings = GatewaySettings.model_validate(
            {
                "data_dir": data_dir,
                "state_url": SecretStr(url) if url else None,
                "http": {"workers": 2},  # the embedded buckets shared by processes
            }
        )
        backend = await open_state_backend(settings)
        opened.append(backend)
        return backend

    yield opener
    for backend in opened:
        await backend.close()


@pytest.fixture
async def backend(open_backend: Opener) -> StateBackend:
    return await open_backend("replica-a")
