"""The file claim-check store: content-addressed, atomic, bounded, clear errors (the behaviour
shared with the S3 store is in tests/integration/store/test_claim_stores.py)."""

from __future__ import annotations

import errno
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ClaimNotFound, ClaimStoreFull
from gateway.store import claims, journal
from gateway.store.claims import FileClaimStore, ObjectTooLarge
from gateway.store.reading import ObjectAltered, verified


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def leftovers(root: Path) -> list[Path]:
    return list((root / "incoming").glob("*"))


async def test_given_bytes_when_stored_then_they_are_found_by_their_sha256(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    stored = await store.put(b"scan of a letter")
    assert stored.sha256 == hashlib.sha256(b"scan of a letter").hexdigest()
    assert stored.size == len(b"scan of a letter")
    assert stored.uri.startswith("file://")
    assert await store.get(stored.sha256) == b"scan of a letter"
    assert store.path_of(stored.sha256).as_uri() == stored.uri


async def test_given_the_same_bytes_twice_then_one_object(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    first, second = await store.put(b"x" * 10), await store.put(b"x" * 10)
    assert first == second
    assert len(list((data_dir / "objects").rglob("*.*"))) == 0
    assert len([p for p in (data_dir / "objects").rglob("*") if p.is_file()]) == 1


async def test_given_a_stream_then_it_is_stored_whole(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    data = bytes(range(256)) * 1000
    stored = await store.put_stream(chunks_of(data))
    assert await store.get(stored.sha256) == data
    assert leftovers(data_dir) == []


async def test_given_a_stream_longer_than_memory_holds_then_it_goes_through_a_temp_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileClaimStore(data_dir)
    data = bytes(range(256)) * (claims.IN_MEMORY_BYTES // 256 * 3)
    written: list[int] = []
    real_write = claims._write
    monkeypatch.setattr(
        claims, "_write", lambda temp, chunk: written.append(len(chunk)) or real_write(temp, chunk)
    )
    stored = await store.put_stream(chunks_of(data, 64 * 1024))
    assert await store.get(stored.sha256) == data
    assert stored.size == len(data)
    assert max(written) <= claims.IN_MEMORY_BYTES + 64 * 1024  # never the whole stream at once
    assert len(written) > 1
    assert leftovers(data_dir) == []


async def test_given_a_long_stream_over_the_limit_then_nothing_is_kept(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    data = b"z" * (claims.IN_MEMORY_BYTES * 2)
    with pytest.raises(ObjectTooLarge):
        await store.put_stream(chunks_of(data, 64 * 1024), max_size=claims.IN_MEMORY_BYTES + 10)
    assert leftovers(data_dir) == []
    assert not await store.exists(hashlib.sha256(data).hexdigest())


async def test_given_a_stream_over_the_limit_then_nothing_is_kept(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    with pytest.raises(ObjectTooLarge) as caught:
        await store.put_stream(chunks_of(b"y" * 5000), max_size=3000)
    assert caught.value.limit == 3000
    assert caught.value.seen > 3000
    assert leftovers(data_dir) == []
    assert not await store.exists(hashlib.sha256(b"y" * 5000).hexdigest())


async def test_given_an_unknown_hash_then_claim_not_found(data_dir: Path) -> None:
    with pytest.raises(ClaimNotFound):
        await FileClaimStore(data_dir).get("0" * 64)


async def test_given_a_full_disk_then_claim_store_full_and_no_partial_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(*_: Any) -> None:
        raise claims._map_os_error(OSError(errno.ENOSPC, "No space left on device"))

    def journal_full(*_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(claims, "_write", no_space)
    monkeypatch.setattr(journal, "_append", journal_full)
    store = FileClaimStore(data_dir)
    large = b"attachment" * claims.IN_MEMORY_BYTES
    for data in (b"attachment", large):
        with pytest.raises(ClaimStoreFull):
            await store.put(data)
        with pytest.raises(ClaimStoreFull):
            await store.put_stream(chunks_of(data))
        assert leftovers(data_dir) == []
        assert not await store.exists(hashlib.sha256(data).hexdigest())
    await store.close()
    assert list((data_dir / "journal").glob("*.wal")) == []


class FlushFailsForGood:
    """A temp file on a full disk whose last bytes sit in the write buffer: flushing fails, and
    closing (which flushes once more) fails again. Found by the tmpfs test in CI: a 500."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb")
        self.name = str(path)

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self._file.close()
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return self._file.fileno()


def test_given_the_disk_fills_at_the_final_flush_then_claim_store_full_and_no_file(
    data_dir: Path,
) -> None:
    store = FileClaimStore(data_dir)
    (data_dir / "incoming").mkdir()
    temp = FlushFailsForGood(data_dir / "incoming" / "put-x")
    with pytest.raises(ClaimStoreFull):
        store._commit(temp, "ab" * 32, 10)  # type: ignore[arg-type]
    assert leftovers(data_dir) == []


async def test_given_an_object_then_spool_is_the_stored_file_itself(data_dir: Path) -> None:
    store = FileClaimStore(data_dir)
    stored = await store.put(b"raw mail")
    async with store.spool(stored.sha256) as spooled:
        assert Path(spooled.name) == store.path_of(stored.sha256)
        assert spooled.read() == b"raw mail"
    assert spooled.closed


async def test_given_chunks_of_an_altered_object_then_the_last_is_held_back() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"one", b"two", b"three"):
            yield chunk

    passed: list[bytes] = []

    async def read_all(sha256: str) -> None:
        async for chunk in verified(sha256, chunks()):
            passed.append(chunk)

    await read_all(hashlib.sha256(b"onetwothree").hexdigest())
    assert passed == [b"one", b"two", b"three"]
    passed.clear()
    with pytest.raises(ObjectAltered):
        await read_all(hashlib.sha256(b"something else").hexdigest())
    assert passed == [b"one", b"two"]
