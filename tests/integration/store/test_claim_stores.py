"""The claim-check store's behaviour, one suite for every backend (as FastStream runs one suite
per broker): files in a temp folder, and a fresh bucket of a real SeaweedFS S3 server (with a
key prefix and SSE-S3, as a deployment would have them), each also under encryption at rest.
Each test also looks behind the store's back: what it left in the folder or the bucket, and what
happens when an object there is altered. S3-only behaviour (start-up checks, an outage, what the
server verifies) follows."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import AnyHttpUrl, SecretStr

from gateway.errors import ClaimNotFound, ClaimStoreError, ConfigurationError
from gateway.settings import GatewaySettings
from gateway.store import s3, s3_multipart
from gateway.store.claims import ClaimStore, FileClaimStore, ObjectTooLarge
from gateway.store.datakeys import SqliteDataKeys
from gateway.store.encrypted import EncryptedClaimStore
from gateway.store.keyring import Keyring, MasterKey
from gateway.store.objects import check, claim_store_from_settings
from gateway.store.reading import ObjectAltered
from gateway.store.s3 import S3ClaimStore
from tests.support.kafka import free_port
from tests.support.s3 import S3Bucket, S3Server

pytestmark = pytest.mark.integration

MiB = 1 << 20
PREFIX = "claims"
NOTHING_LISTENS = f"http://127.0.0.1:{free_port()}"


@dataclass
class Backend:
    """A store, and a look at where it keeps things without going through it."""

    store: ClaimStore
    objects: Callable[[], list[str]]  # what is stored under its final names
    leftovers: Callable[[], list[str]]  # temp files, temp keys, multipart uploads under way
    alter: Callable[[str, bytes], None]  # overwrite a stored object's bytes directly


def file_backend(root: Path) -> Backend:
    store = FileClaimStore(root)

    def files(folder: str) -> list[str]:
        return sorted(str(p) for p in (root / folder).rglob("*") if p.is_file())

    return Backend(
        store,
        objects=lambda: files("objects"),
        leftovers=lambda: files("incoming"),
        alter=lambda sha256, data: store.path_of(sha256).write_bytes(data),
    )


def s3_backend(server: S3Server, bucket: S3Bucket) -> Backend:
    store = S3ClaimStore(
        bucket.bucket,
        PREFIX,
        endpoint_url=bucket.endpoint,
        region=bucket.region,
        access_key_id=bucket.access_key,
        secret_access_key=bucket.secret_key,
        server_side_encryption="AES256",
    )
    client = server.client()

    def keys(prefix: str) -> list[str]:
        listed = client.list_objects_v2(Bucket=bucket.bucket, Prefix=f"{PREFIX}/{prefix}")
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=bucket.bucket).get("Uploads", [])
        return keys("incoming/") + [f"upload of {upload['Key']}" for upload in uploads]

    def alter(sha256: str, data: bytes) -> None:
        """Overwritten, and served so: SeaweedFS may answer the former bytes for a moment
        after an overwrite (a loaded CI run read them whole), which real S3 does not since its
        read-after-write consistency; what is tested is the store's check, once the server
        holds the altered bytes."""
        key = store.key_of(sha256)
        client.put_object(Bucket=bucket.bucket, Key=key, Body=data)
        deadline = time.monotonic() + 10
        while client.get_object(Bucket=bucket.bucket, Key=key)["Body"].read() != data:
            assert time.monotonic() < deadline, "the server still serves the former bytes"
            time.sleep(0.05)

    return Backend(store, lambda: keys("objects/"), leftovers, alter)


@pytest.fixture(params=["files", "s3", "encrypted files", "encrypted s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param.endswith("files"):
        chosen = file_backend(tmp_path / "data")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        chosen = s3_backend(request.getfixturevalue("s3_server"), bucket)
    if request.param.startswith("encrypted"):
        chosen = encrypted(chosen)
    await chosen.store.open()
    try:
        yield chosen
    finally:
        await chosen.store.close()


def encrypted(backend: Backend) -> Backend:
    """The same store with every object sealed (``EncryptedClaimStore``), its data keys in
    memory; ``alter`` writes bytes in clear, as a store of an earlier version held them."""
    assert isinstance(backend.store, FileClaimStore | S3ClaimStore)
    keyring = Keyring([MasterKey.of("test", os.urandom(32))])
    sealed = EncryptedClaimStore(backend.store, keyring, SqliteDataKeys(None))
    return dataclasses.replace(backend, store=sealed)


def sample(size: int) -> bytes:
    return os.urandom(size)


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(store: ClaimStore, sha256: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, start, end)])


async def test_given_bytes_when_put_twice_then_one_object_found_by_its_sha256(
    backend: Backend,
) -> None:
    data = b"scan of a letter"
    first, second = await backend.store.put(data), await backend.store.put(data)
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert first.uri == backend.store.uri_of(first.sha256)
    assert await backend.store.get(first.sha256) == data
    assert await backend.store.exists(first.sha256)
    assert await backend.store.size(first.sha256) == len(data)
    assert len(backend.objects()) == 1
    assert backend.leftovers() == []


async def test_given_a_30_mib_stream_then_it_is_stored_whole_holding_a_fraction_of_it(
    backend: Backend,
) -> None:
    expected, size = hashlib.sha256(), 30 * MiB

    async def generated() -> AsyncIterator[bytes]:
        for _ in range(size // (64 * 1024)):
            chunk = os.urandom(64 * 1024)
            expected.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        stored = await backend.store.put_stream(generated())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.sha256 == expected.hexdigest()
    assert stored.size == size
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB for a 30 MiB stream"
    streamed = hashlib.sha256()
    async for chunk in backend.store.read(stored.sha256):
        streamed.update(chunk)
    assert streamed.hexdigest() == stored.sha256
    assert backend.leftovers() == []


@pytest.mark.parametrize(("size", "limit"), [(5000, 3000), (20 * MiB, 12 * MiB)])
async def test_given_a_stream_over_its_limit_then_refused_and_nothing_left(
    backend: Backend, size: int, limit: int
) -> None:
    with pytest.raises(ObjectTooLarge) as refused:
        await backend.store.put_stream(chunks_of(sample(size)), max_size=limit)
    assert refused.value.limit == limit
    assert backend.objects() == []
    assert backend.leftovers() == []  # S3: no temp key, no multipart upload left pending


async def test_given_an_object_then_byte_ranges_read_as_slices(backend: Backend) -> None:
    data = sample(3 * MiB + 123)
    stored = await backend.store.put(data)
    n = len(data)
    for start, end in [(0, 10), (1000, 2 * MiB + 7), (n - 10, None), (n - 5, n + 100), (0, n)]:
        assert await read_all(backend.store, stored.sha256, start, end) == data[start:end]
    assert await read_all(backend.store, stored.sha256, 7, 7) == b""
    assert await read_all(backend.store, stored.sha256, n + 10) == b""
    with pytest.raises(ValueError, match="invalid byte range"):
        await read_all(backend.store, stored.sha256, 10, 5)


async def test_given_an_object_altered_behind_the_store_then_it_is_never_served_whole(
    backend: Backend,
) -> None:
    data = sample(3 * MiB)
    stored = await backend.store.put(data)
    backend.alter(stored.sha256, data[:-1] + b"\x00")
    received: list[bytes] = []

    async def read_whole() -> None:
        async for chunk in backend.store.read(stored.sha256):
            received.append(chunk)

    with pytest.raises(ObjectAltered):
        await read_whole()
    assert len(b"".join(received)) < len(data)
    with pytest.raises(ObjectAltered):
        await backend.store.get(stored.sha256)
    with pytest.raises(ObjectAltered):
        async with backend.store.spool(stored.sha256):
            pytest.fail("an altered object was spooled")
    # a part cannot be checked against the whole object's hash: it is served as stored
    assert await read_all(backend.store, stored.sha256, 0, 10) == data[:10]


async def test_given_an_object_then_spool_gives_a_local_file_of_its_bytes(
    backend: Backend,
) -> None:
    data = sample(3 * MiB)
    stored = await backend.store.put(data)
    async with backend.store.spool(stored.sha256) as spooled:
        assert await asyncio.to_thread(spooled.read) == data


async def test_given_an_object_when_deleted_twice_then_gone_without_error(
    backend: Backend,
) -> None:
    stored = await backend.store.put(b"to be erased")
    await backend.store.delete(stored.sha256)
    await backend.store.delete(stored.sha256)
    assert not await backend.store.exists(stored.sha256)
    assert backend.objects() == []
    with pytest.raises(ClaimNotFound):
        await backend.store.get(stored.sha256)


async def test_given_an_unknown_hash_then_claim_not_found_everywhere(backend: Backend) -> None:
    unknown = "0" * 64
    assert not await backend.store.exists(unknown)
    with pytest.raises(ClaimNotFound):
        await backend.store.get(unknown)
    with pytest.raises(ClaimNotFound):
        await backend.store.size(unknown)
    with pytest.raises(ClaimNotFound):
        await read_all(backend.store, unknown)
    with pytest.raises(ClaimNotFound):
        await read_all(backend.store, unknown, 3, 3)
    with pytest.raises(ClaimNotFound):
        async with backend.store.spool(unknown):
            pytest.fail("an unknown object was spooled")


async def test_given_concurrent_puts_of_the_same_bytes_then_one_object_each(
    backend: Backend,
) -> None:
    small, large = b"the same attachment", sample(10 * MiB)
    stored = await asyncio.gather(
        *[backend.store.put(small) for _ in range(8)],
        *[backend.store.put_stream(chunks_of(large)) for _ in range(3)],
    )
    assert {s.sha256 for s in stored} == {
        hashlib.sha256(small).hexdigest(),
        hashlib.sha256(large).hexdigest(),
    }
    assert len(backend.objects()) == 2
    assert backend.leftovers() == []
    assert await backend.store.get(stored[-1].sha256) == large


# -- S3 only


@pytest.fixture
async def s3_store(s3_server: S3Server, s3_bucket: S3Bucket) -> AsyncIterator[Backend]:
    chosen = s3_backend(s3_server, s3_bucket)
    await chosen.store.open()
    try:
        yield chosen
    finally:
        await chosen.store.close()


async def test_given_small_and_multipart_objects_then_both_encrypted_under_their_content_key(
    s3_server: S3Server, s3_bucket: S3Bucket, s3_store: Backend
) -> None:
    small = await s3_store.store.put(b"letter")
    large = await s3_store.store.put_stream(chunks_of(sample(9 * MiB)))
    client = s3_server.client()
    for stored in (small, large):
        key = f"{PREFIX}/objects/{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}"
        assert stored.uri == f"s3://{s3_bucket.bucket}/{key}"
        head = client.head_object(Bucket=s3_bucket.bucket, Key=key)
        assert head["ContentLength"] == stored.size
        assert head["ServerSideEncryption"] == "AES256"


async def test_given_bytes_that_do_not_match_their_checksum_then_the_server_refuses_them(
    s3_store: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SeaweedFS checks x-amz-checksum-sha256 (BadDigest): what the store sends is what the
    server keeps, or nothing."""
    monkeypatch.setattr(s3, "checksum", lambda data: s3_multipart.checksum(b"other bytes"))
    with pytest.raises(ClaimStoreError, match="BadDigest"):
        await s3_store.store.put(b"attachment")
    assert s3_store.objects() == []


def store_settings(bucket: S3Bucket, **changes: Any) -> GatewaySettings:
    s3_settings = bucket.settings().model_copy(update=changes)
    return GatewaySettings(object_store_url=f"s3://{bucket.bucket}/{PREFIX}", s3=s3_settings)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"bucket": "no-such-bucket"}, "GATEWAY_OBJECT_STORE_URL"),
        ({"secret_access_key": SecretStr("wrong")}, "GATEWAY_S3_SECRET_ACCESS_KEY"),
        ({"access_key_id": "unknown-key"}, "GATEWAY_S3_ACCESS_KEY_ID"),
        ({"endpoint_url": AnyHttpUrl(NOTHING_LISTENS)}, "GATEWAY_S3_ENDPOINT_URL"),
    ],
)
async def test_given_a_wrong_setting_then_the_start_up_check_names_it_in_one_line(
    s3_bucket: S3Bucket, change: dict[str, Any], setting: str
) -> None:
    bucket = change.pop("bucket", s3_bucket.bucket)
    settings = store_settings(dataclasses.replace(s3_bucket, bucket=bucket), **change)
    store = claim_store_from_settings(settings)
    await store.open()
    try:
        with pytest.raises(ConfigurationError) as refused:
            await check(store)
    finally:
        await store.close()
    assert str(refused.value).startswith(f"{setting}: ")
    assert "\n" not in str(refused.value)


async def test_given_the_right_settings_then_the_start_up_check_passes(s3_bucket: S3Bucket) -> None:
    store = claim_store_from_settings(store_settings(s3_bucket))
    assert isinstance(store, S3ClaimStore)
    async with store:
        await check(store)
        stored = await store.put(b"first complaint")
    assert stored.uri.startswith(f"s3://{s3_bucket.bucket}/{PREFIX}/objects/")


@pytest.mark.fault
@pytest.mark.slow
async def test_given_the_server_stopped_then_puts_fail_as_claim_store_errors_until_it_is_back(
    s3_server: S3Server, s3_store: Backend
) -> None:
    before = await s3_store.store.put(b"before the outage")
    s3_server.stop()
    try:
        for attempt in (
            s3_store.store.put(b"during the outage"),
            s3_store.store.put_stream(chunks_of(sample(9 * MiB))),
            s3_store.store.get(before.sha256),
            s3_store.store.exists(before.sha256),
        ):
            with pytest.raises(ClaimStoreError, match="unreachable"):
                await attempt
    finally:
        s3_server.start()  # waits until the server stores again (15 s of master warm-up)
    after = await s3_store.store.put(b"after the outage")
    assert await s3_store.store.get(after.sha256) == b"after the outage"
    assert await s3_store.store.get(before.sha256) == b"before the outage"
