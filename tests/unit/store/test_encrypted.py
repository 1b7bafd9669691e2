"""Encryption at rest over the file store: what is on disk reveals nothing, every read is the
plaintext (whole or a range), and every kind of tampering fails closed. The same suite over a
real S3 bucket is in tests/integration/store/test_encrypted_stores.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import ClaimNotFound, ClaimStoreError
from gateway.store.claims import FileClaimStore, ObjectTooLarge
from gateway.store.datakeys import SqliteDataKeys
from gateway.store.encrypted import DataKeyGone, EncryptedClaimStore
from gateway.store.envelope import HEADER_BYTES, MAGIC, TAG_BYTES
from gateway.store.keyring import Keyring, KeyUnavailable, MasterKey
from gateway.store.reading import ObjectAltered

CHUNK = 1024  # small chunks: many of them in a small object
MARKER = b"NAM TREL12345678 Marie Tremblay, diabete de type 2"


def keyring(*ids: str, seed: int = 0) -> Keyring:
    return Keyring(MasterKey.of(key_id, bytes([seed + n]) * 32) for n, key_id in enumerate(ids))


@pytest.fixture
def keys(data_dir: Path) -> SqliteDataKeys:
    return SqliteDataKeys(data_dir / "state")


@pytest.fixture
def store(data_dir: Path, keys: SqliteDataKeys) -> EncryptedClaimStore:
    return EncryptedClaimStore(FileClaimStore(data_dir), keyring("k1"), keys, chunk_bytes=CHUNK)


def stored_files(data_dir: Path) -> list[Path]:
    return [path for path in (data_dir / "objects").rglob("*") if path.is_file()]


async def chunks_of(data: bytes, size: int = 700) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(chunks: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in chunks:
        into.append(chunk)


def letter(size: int) -> bytes:
    body = (MARKER + b" ") * (size // (len(MARKER) + 1) + 1)
    return body[:size]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17])
async def test_given_any_size_when_stored_then_read_back_whole_and_sealed_on_disk(
    store: EncryptedClaimStore, data_dir: Path, size: int
) -> None:
    data = letter(size)
    stored = await store.put_stream(chunks_of(data))
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == size
    assert await store.get(stored.sha256) == data
    assert await store.size(stored.sha256) == size
    [path] = stored_files(data_dir)
    on_disk = path.read_bytes()
    assert path.name == stored.sha256
    assert on_disk.startswith(MAGIC)
    assert MARKER[:12] not in on_disk
    chunks = max(1, -(-size // CHUNK))
    assert len(on_disk) == HEADER_BYTES + size + chunks * TAG_BYTES


async def test_given_an_object_when_ranges_are_read_then_each_is_the_slice(
    store: EncryptedClaimStore,
) -> None:
    data = os.urandom(4 * CHUNK + 300)
    stored = await store.put(data)
    edges = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 4 * CHUNK, len(data) - 1, len(data)]
    for start in edges:
        for end in [*edges, len(data) + 50, None]:
            if end is not None and end < start:
                continue
            read = b"".join([c async for c in store.read(stored.sha256, start, end)])
            assert read == data[start:end], (start, end)


async def test_given_the_same_bytes_twice_then_one_object_and_one_key(
    store: EncryptedClaimStore, data_dir: Path, keys: SqliteDataKeys
) -> None:
    first = await store.put(letter(3000))
    second = await store.put_stream(chunks_of(letter(3000)))
    assert first == second
    assert len(stored_files(data_dir)) == 1
    assert await keys.delete_keys_of(first.sha256) == 1


async def test_given_a_size_limit_when_a_stream_passes_it_then_nothing_is_kept(
    store: EncryptedClaimStore, data_dir: Path
) -> None:
    with pytest.raises(ObjectTooLarge):
        await store.put_stream(chunks_of(letter(5000)), max_size=4000)
    assert stored_files(data_dir) == []
    assert not list((data_dir / "incoming").glob("*"))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("offset", [0, 9, 20, HEADER_BYTES, HEADER_BYTES + CHUNK + 20, -1])
async def test_given_a_flipped_byte_anywhere_then_reading_it_fails_closed(
    store: EncryptedClaimStore, data_dir: Path, offset: int
) -> None:
    stored = await store.put(letter(3 * CHUNK + 10))
    [path] = stored_files(data_dir)
    flip(path, offset if offset >= 0 else path.stat().st_size + offset)
    with pytest.raises(ClaimStoreError):
        await store.get(stored.sha256)
    served: list[bytes] = []
    with pytest.raises(ClaimStoreError):
        await collect(store.read(stored.sha256), served)
    assert len(b"".join(served)) < 3 * CHUNK + 10  # never the whole


async def test_given_chunks_swapped_cut_off_or_moved_then_they_are_refused(
    store: EncryptedClaimStore, data_dir: Path
) -> None:
    data = letter(3 * CHUNK)
    stored = await store.put(data)
    [path] = stored_files(data_dir)
    original = path.read_bytes()
    record = CHUNK + TAG_BYTES
    first, second = (
        original[HEADER_BYTES : HEADER_BYTES + record],
        original[HEADER_BYTES + record : HEADER_BYTES + 2 * record],
    )
    swapped = original[:HEADER_BYTES] + second + first + original[HEADER_BYTES + 2 * record :]
    cut = original[: HEADER_BYTES + 2 * record]  # at a chunk boundary: looks whole
    for altered in (swapped, cut):
        path.write_bytes(altered)
        with pytest.raises(ObjectAltered):
            await store.get(stored.sha256)
    path.write_bytes(cut)
    assert b"".join([c async for c in store.read(stored.sha256, 0, CHUNK)]) == data[:CHUNK]
    with pytest.raises(ObjectAltered):
        b"".join([c async for c in store.read(stored.sha256, CHUNK)])
    # the sealed bytes of one object put under another's name: its key opens no other object
    other = await store.put(letter(100) + b"!")
    store.inner.path_of(other.sha256).write_bytes(original)  # type: ignore[attr-defined]
    with pytest.raises(ObjectAltered):
        b"".join([c async for c in store.read(other.sha256, CHUNK, 2 * CHUNK)])


async def test_given_another_master_key_under_the_same_id_then_nothing_opens(
    data_dir: Path, keys: SqliteDataKeys, store: EncryptedClaimStore
) -> None:
    stored = await store.put(letter(2000))
    wrong = EncryptedClaimStore(FileClaimStore(data_dir), keyring("k1", seed=9), keys)
    with pytest.raises(KeyUnavailable):
        await wrong.get(stored.sha256)
    missing = EncryptedClaimStore(FileClaimStore(data_dir), keyring("k2"), keys)
    with pytest.raises(KeyUnavailable, match="k1"):
        await missing.get(stored.sha256)


async def test_given_an_object_stored_in_clear_by_an_earlier_version_then_it_is_still_read(
    store: EncryptedClaimStore, data_dir: Path
) -> None:
    plain = FileClaimStore(data_dir)
    old = await plain.put(letter(2500))
    assert await store.get(old.sha256) == letter(2500)
    assert await store.size(old.sha256) == 2500
    assert b"".join([c async for c in store.read(old.sha256, 10, 20)]) == letter(2500)[10:20]
    again = await store.put(letter(2500))  # the same bytes: the object there is kept
    assert again == old
    plain.path_of(old.sha256).write_bytes(letter(2499) + b"X")
    with pytest.raises(ObjectAltered):
        await store.get(old.sha256)


async def test_given_an_object_deleted_then_its_key_is_gone_and_a_copy_of_its_bytes_is_useless(
    store: EncryptedClaimStore, data_dir: Path
) -> None:
    stored = await store.put(letter(2000))
    [path] = stored_files(data_dir)
    copy = path.read_bytes()
    await store.delete(stored.sha256)
    assert stored_files(data_dir) == []
    with pytest.raises(ClaimNotFound):
        await store.get(stored.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(copy)  # a backup put back
    with pytest.raises(DataKeyGone):
        await store.get(stored.sha256)
    with pytest.raises(ClaimNotFound):
        await store.size(stored.sha256)


async def test_given_a_spool_then_it_is_the_plaintext(store: EncryptedClaimStore) -> None:
    stored = await store.put(letter(5000))
    async with store.spool(stored.sha256) as spooled:
        assert spooled.read() == letter(5000)


async def test_given_encryption_turned_off_then_new_objects_are_in_clear_and_read_alike(
    data_dir: Path, keys: SqliteDataKeys
) -> None:
    plain = EncryptedClaimStore(FileClaimStore(data_dir), keyring("k1"), keys, encrypt=False)
    stored = await plain.put_stream(chunks_of(letter(3000)))
    [path] = stored_files(data_dir)
    assert path.read_bytes() == letter(3000)
    assert await plain.get(stored.sha256) == letter(3000)
