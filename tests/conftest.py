"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests and fuzzers run their examples from the active profile: "default" in CI (100
# examples each, bounded), "fuzz" on demand for a long run: HYPOTHESIS_PROFILE=fuzz scripts/test
# --timeout=0 tests/unit/channels/test_mail.py tests/integration/web/test_hostile_submissions.py
settings.register_profile("fuzz", max_examples=20_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The shared corpus lies beside the clone (as CI lays it); GATEWAY_SHARED_DIR says otherwise.
SHARED = Path(os.environ.get("GATEWAY_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)  # the gateway's alone (it refuses a data folder others can open)
    return path
