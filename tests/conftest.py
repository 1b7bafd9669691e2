"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The shared corpus lies beside the clone (as CI lays it); GATEWAY_SHARED_DIR says otherwise.
SHARED = Path(os.environ.get("GATEWAY_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path
