"""The data folder is the gateway's alone: made 0700, everything in it 0600, and a folder other
users can open refused at start with one line naming it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.store.datadir import private_data_dir


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_given_no_folder_then_it_is_made_for_the_gateway_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "intake"
    private_data_dir(data_dir)
    assert mode(data_dir) == 0o700


@pytest.mark.parametrize(
    ("given", "seen"), [(0o755, "readable by"), (0o750, "readable by"), (0o711, "open to")]
)
def test_given_a_folder_other_users_can_open_then_start_up_stops_naming_it(
    tmp_path: Path, given: int, seen: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(given)
    with pytest.raises(ConfigurationError) as refused:
        private_data_dir(data_dir)
    assert str(refused.value) == (
        f"GATEWAY_DATA_DIR: {data_dir} is {seen} other users (mode {given:04o}): chmod 700 it"
    )


STORES_USED = """
import asyncio, os, sys
from gateway.components import Components
from gateway.notifier.ledger import Contact
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings
from gateway.store.datadir import private_process

async def use(data_dir):
    settings = GatewaySettings.model_validate({"data_dir": data_dir})
    publisher = KafkaPublisher(settings.kafka)
    components = await Components.open(settings, publisher)
    try:
        await components.claims.put(b"%PDF-1.4 a letter")
        await components.ledger.remember_contact(Contact("PL-AAAA-BBBB-CCCC", name="Marie"))
        await components.state.store_response("form", "key", "sha", {"reference": "PL-A"})
    finally:
        await components.close()
        await publisher.close()

os.umask(0o022)  # as a shell leaves it
private_process()  # as the command line does first
asyncio.run(use(sys.argv[1]))
"""


def test_given_the_stores_used_by_a_process_then_every_file_is_0600_and_every_folder_0700(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-c", STORES_USED, str(data_dir)], check=True, timeout=120)
    paths = [data_dir, *data_dir.rglob("*")]
    assert any(path.parent.parent.parent.name == "objects" for path in paths if path.is_file())
    assert {oct(mode(p)) for p in paths if p.is_dir()} == {oct(0o700)}
    assert {oct(mode(p)) for p in paths if p.is_file()} == {oct(0o600)}
    assert any(p.name == "encryption-key" for p in paths)


def test_given_a_world_readable_folder_then_a_command_says_so_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "rotate"],
        env={**environment, "GATEWAY_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"intake-gateway: configuration error: GATEWAY_DATA_DIR: {data_dir} is readable by "
        "other users (mode 0755): chmod 700 it"
    ]
    assert not (data_dir / "state").exists()
