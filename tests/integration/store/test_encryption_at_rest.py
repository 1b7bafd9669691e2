"""Encryption at rest as replicas run it: one PostgreSQL (the wrapped data keys) and one S3
bucket (the sealed objects). What lies in the bucket reveals nothing; another replica reads it;
``intake-gateway keys rotate`` re-wraps and keeps every object readable; a wrong or missing key
stops start-up with one line naming the variable."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from gateway.components import Components
from gateway.errors import ConfigurationError
from gateway.publisher import KafkaPublisher
from gateway.settings import GatewaySettings, load_settings
from gateway.store.keyring import new_key_text
from tests.support.s3 import S3Bucket, S3Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKER = b"Diagnostic: diabete de type 2, NAM TREL12345678"
K1, K2 = new_key_text(), new_key_text()


def environment(postgres_url: str, bucket: S3Bucket, data_dir: Path, **keys: str) -> dict[str, str]:
    return {
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_STATE_URL": postgres_url,
        "GATEWAY_OBJECT_STORE_URL": bucket.object_store_url,
        "GATEWAY_S3_ENDPOINT_URL": bucket.endpoint,
        "GATEWAY_S3_REGION": bucket.region,
        "GATEWAY_S3_ACCESS_KEY_ID": bucket.access_key,
        "GATEWAY_S3_SECRET_ACCESS_KEY": bucket.secret_key,
        "GATEWAY_ENCRYPTION_KEYS": json.dumps(keys),
    }


Loader = Callable[[dict[str, str]], GatewaySettings]


@pytest.fixture
def settings_of(monkeypatch: pytest.MonkeyPatch) -> Loader:
    def load(env: dict[str, str]) -> GatewaySettings:
        with monkeypatch.context() as patched:
            for name in list(os.environ):
                if name.startswith("GATEWAY_"):
                    patched.delenv(name)
            for name, value in env.items():
                patched.setenv(name, value)
            return load_settings()

    return load


@pytest.fixture
async def publisher() -> AsyncIterator[KafkaPublisher]:
    """Never started: the stores are what is tested here."""
    publisher = KafkaPublisher(GatewaySettings().kafka)
    yield publisher
    await publisher.close()


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def bucket_bytes(server: S3Server, bucket: S3Bucket) -> list[bytes]:
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket.bucket).get("Contents", [])
    return [
        client.get_object(Bucket=bucket.bucket, Key=item["Key"])["Body"].read() for item in listed
    ]


async def letter_stream() -> AsyncIterator[bytes]:
    for number in range(40):  # 40 x 64 KiB: many chunks, one S3 part
        yield (MARKER + f" page {number} ".encode()) * 1200


async def test_given_two_replicas_then_objects_are_sealed_in_s3_and_rotation_keeps_them_readable(
    postgres_url: str,
    s3_server: S3Server,
    s3_bucket: S3Bucket,
    tmp_path: Path,
    settings_of: Loader,
    publisher: KafkaPublisher,
) -> None:
    load = settings_of
    env_a = environment(postgres_url, s3_bucket, tmp_path / "a", k1=K1)
    env_b = environment(postgres_url, s3_bucket, tmp_path / "b", k1=K1)
    a = await Components.open(load(env_a), publisher)
    try:
        stored = await a.claims.put_stream(letter_stream())
        small = await a.claims.put(MARKER + b" in a small raw copy")
    finally:
        await a.close()
    everything = bucket_bytes(s3_server, s3_bucket)
    assert len(everything) == 2
    assert not any(MARKER[:16] in data or b"TREL12345678" in data for data in everything)
    database = await asyncpg.connect(postgres_url)
    try:
        rows = await database.fetch("SELECT sha256, master_key_id FROM object_key")
    finally:
        await database.close()
    assert sorted((row[0], row[1]) for row in rows) == sorted(
        [(stored.sha256, "k1"), (small.sha256, "k1")]
    )

    b = await Components.open(load(env_b), publisher)
    try:
        assert (await b.claims.get(stored.sha256)).startswith(MARKER)
        part = b"".join([c async for c in b.claims.read(stored.sha256, 100_000, 100_010)])
        assert len(part) == 10
    finally:
        await b.close()

    rotating = environment(postgres_url, s3_bucket, tmp_path / "a", k2=K2, k1=K1)
    code, out, err = await cli(rotating, "keys", "rotate")
    assert code == 0, err
    assert "data keys re-wrapped\t2\twith 'k2'" in out
    code, out, _ = await cli(rotating, "keys", "rotate")
    assert "data keys re-wrapped\t0\twith 'k2'" in out
    assert "data keys already\t2\twith 'k2'" in out

    only_new = await Components.open(
        load(environment(postgres_url, s3_bucket, tmp_path / "b", k2=K2)), publisher
    )
    try:
        assert await only_new.claims.get(small.sha256) == MARKER + b" in a small raw copy"
    finally:
        await only_new.close()
    assert bucket_bytes(s3_server, s3_bucket) == everything  # not one object rewritten


async def test_given_a_wrong_or_missing_key_then_start_up_stops_with_one_line(
    postgres_url: str,
    s3_bucket: S3Bucket,
    tmp_path: Path,
    settings_of: Loader,
    publisher: KafkaPublisher,
) -> None:
    load = settings_of
    first = await Components.open(
        load(environment(postgres_url, s3_bucket, tmp_path, k1=K1)), publisher
    )
    try:
        await first.claims.put(MARKER)
    finally:
        await first.close()
    for keys, expected in [
        ({"k1": K2}, "GATEWAY_ENCRYPTION_KEYS: key 'k1' is not the key this installation"),
        ({"k2": K2}, "GATEWAY_ENCRYPTION_KEYS: key 'k1' still seals stored data"),
    ]:
        env = environment(postgres_url, s3_bucket, tmp_path, **keys)
        with pytest.raises(ConfigurationError, match=expected):
            await Components.open(load(env), publisher)
        code, _, err = await cli(env, "keys", "rotate")
        assert code == 2
        [line] = err.strip().splitlines()
        assert line.startswith(f"intake-gateway: configuration error: {expected}")
        assert K1 not in line
        assert K2 not in line
