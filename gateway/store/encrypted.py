"""Encryption at rest of every stored object: ``EncryptedClaimStore``, a ``ClaimStore`` around
the files or the S3 store (any ``BlobStore``).

Envelope encryption: each object is sealed with a random 256-bit data key (AES-256-GCM, in
chunks: ``gateway.store.envelope``), and the data key is kept wrapped by the current master key
(``gateway.store.keyring``) in the state store (``gateway.store.datakeys``), named by a random
id in the object's header. Nothing else changes for the callers:

- the address is still the SHA-256 of the *plaintext*: deduplication, URIs and the hashes in
  events are what they were; the stored bytes are header and sealed chunks;
- a stream is sealed as it comes (memory: a chunk, and the store's own buffer), and a byte
  range is read by opening only the chunks it covers;
- an object read whole is also checked against its SHA-256, as before; a chunk that does not
  open (a flipped byte, chunks cut off, swapped or moved from another object, a data key made
  for another object) raises ``ObjectAltered``: nothing of it is handed over past that point,
  and never the whole;
- ``delete`` destroys the object's data keys first (crypto-shredding), then the object.

**Objects stored in clear by an earlier version** are told apart by their first bytes (an
encrypted object starts with ``envelope.MAGIC``) and read as they are, checked against their
hash when read whole. New objects are always sealed (``encrypt=False``, from
``GATEWAY_ENCRYPTION_AT_REST=false``, only measures what sealing costs).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator
from typing import BinaryIO, Self, cast

from gateway.errors import ClaimNotFound, ClaimStoreError, ClaimStoreFull, StateStoreError
from gateway.store.blobs import BlobStore, BlobUpload
from gateway.store.claims import ObjectTooLarge, StoredObject
from gateway.store.datakeys import DataKeyStore, WrappedKey
from gateway.store.envelope import CHUNK_BYTES, HEADER_BYTES, Header, Opener, Sealer
from gateway.store.keyring import KEY_BYTES, Keyring
from gateway.store.reading import READ_BYTES, ObjectAltered, check_range, verified

CACHED_KEYS = 4096  # data keys kept opened (an object read in ranges opens one key once)


class DataKeyGone(ClaimNotFound):
    """The object's data key was destroyed (erased), or was never this installation's."""

    def __init__(self, sha256: str) -> None:
        super().__init__(f"object {sha256}: its data key is gone (erased): it cannot be read")


class EncryptedClaimStore:
    def __init__(
        self,
        inner: BlobStore,
        keyring: Keyring,
        keys: DataKeyStore,
        *,
        encrypt: bool = True,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.inner = inner
        self.keyring = keyring
        self._keys = keys
        self._encrypt = encrypt
        self._chunk_bytes = chunk_bytes
        self._opened: OrderedDict[str, tuple[str, bytes]] = OrderedDict()  # key id -> sha, key

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def uri_of(self, sha256: str) -> str:
        return self.inner.uri_of(sha256)

    async def exists(self, sha256: str) -> bool:
        return await self.inner.exists(sha256)

    # -- writing

    async def put(self, data: bytes) -> StoredObject:
        sha256 = hashlib.sha256(data).hexdigest()
        if await self.inner.exists(sha256):
            return StoredObject(sha256, len(data), self.uri_of(sha256))
        upload = self.inner.upload()
        try:
            writer = _Coalesced(upload)
            sealer = self._sealer()
            for piece in _sealed_whole(sealer, data) if sealer else [data]:
                await writer.write(piece)
            await writer.flush()
            await self._commit(upload, sealer, sha256)
        except BaseException:
            await upload.abort()
            raise
        return StoredObject(sha256, len(data), self.uri_of(sha256))

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        digest, size = hashlib.sha256(), 0
        upload = self.inner.upload()
        try:
            writer = _Coalesced(upload)
            sealer = self._sealer()
            async for chunk in chunks:
                size += len(chunk)
                _within(size, max_size)
                digest.update(chunk)
                for piece in sealer.feed(chunk) if sealer else [chunk]:
                    await writer.write(piece)
            for piece in sealer.finish() if sealer else []:
                await writer.write(piece)
            await writer.flush()
            sha256 = digest.hexdigest()
            if await self.inner.exists(sha256):
                await upload.abort()
            else:
                await self._commit(upload, sealer, sha256)
        except BaseException:
            await upload.abort()
            raise
        return StoredObject(sha256, size, self.uri_of(sha256))

    def _sealer(self) -> _KeyedSealer | None:
        if not self._encrypt:
            return None
        return _KeyedSealer(os.urandom(KEY_BYTES), Header.new(self._chunk_bytes))

    async def _commit(self, upload: BlobUpload, sealer: _KeyedSealer | None, sha256: str) -> None:
        """The data key kept (wrapped) before the object appears under its name: an object is
        never there without its key."""
        if sealer is not None:
            key_id = sealer.header.key_id.hex()
            draft = WrappedKey(key_id, sha256, "", b"")
            master_id, wrapped = self.keyring.seal(sealer.data_key, draft.context)
            try:
                await self._keys.add(WrappedKey(key_id, sha256, master_id, wrapped))
            except StateStoreError as exc:  # the object is not stored without its key
                raise _store_error(exc) from exc
        await upload.commit(sha256)

    # -- reading

    async def size(self, sha256: str) -> int:
        """The plaintext's size; an object whose data key is gone is not there."""
        header = await self._header(sha256)
        if header is not None:
            await self._data_key(header, sha256)
        stored = await self.inner.size(sha256)
        return stored if header is None else header.plaintext_size(stored)

    async def get(self, sha256: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(sha256)])

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        header = await self._header(sha256)
        if header is None:
            chunks = self.inner.read_blob(sha256, start, end)
            if start == 0 and (end is None or end >= await self.inner.size(sha256)):
                chunks = verified(sha256, chunks)
        elif end == start:
            return
        else:
            chunks = self._opened_range(header, sha256, start, end)
        async for chunk in chunks:
            yield chunk

    @contextlib.asynccontextmanager
    async def spool(self, sha256: str) -> AsyncIterator[BinaryIO]:
        """A temp file of the plaintext (checked), removed when the context ends."""
        spooled = cast(BinaryIO, await asyncio.to_thread(tempfile.TemporaryFile))
        try:
            async for chunk in self.read(sha256):
                await asyncio.to_thread(spooled.write, chunk)
            spooled.seek(0)
            yield spooled
        finally:
            spooled.close()

    async def delete(self, sha256: str) -> None:
        """Crypto-shredding: the object's data keys destroyed, then the object deleted."""
        await self._keys.delete_keys_of(sha256)
        for key_id in [k for k, (sha, _) in self._opened.items() if sha == sha256]:
            del self._opened[key_id]
        await self.inner.delete(sha256)

    async def _header(self, sha256: str) -> Header | None:
        head = b"".join([chunk async for chunk in self.inner.read_blob(sha256, 0, HEADER_BYTES)])
        return Header.parse(head, sha256)

    async def _opened_range(
        self, header: Header, sha256: str, start: int, end: int | None
    ) -> AsyncIterator[bytes]:
        opener = Opener(await self._data_key(header, sha256), header, sha256)
        chunk_bytes, record_bytes = header.chunk_bytes, header.record_bytes
        first = start // chunk_bytes
        offset = HEADER_BYTES + first * record_bytes
        stop = None if end is None else HEADER_BYTES + (-(-end // chunk_bytes)) * record_bytes
        blob = self.inner.read_blob(sha256, offset, stop)
        wanted = None if stop is None else stop - offset
        plain = _Plaintext(sha256, whole=start == 0)
        index = first
        async for record, must_be_final in _records(blob, record_bytes, wanted, first == 0, sha256):
            chunk, final = opener.open(index, record, must_be_final)
            position = index * chunk_bytes
            index += 1
            piece = chunk[max(0, start - position) : None if end is None else end - position]
            for ready in plain.take(chunk, piece, final):
                yield ready
            if final:
                break
        for ready in plain.end():
            yield ready

    async def _data_key(self, header: Header, sha256: str) -> bytes:
        key_id = header.key_id.hex()
        if (opened := self._opened.get(key_id)) is None:
            row = await self._keys.key(key_id)
            if row is None:
                raise DataKeyGone(sha256)
            opened = (row.sha256, self.keyring.open(row.master_key_id, row.wrapped, row.context))
            self._opened[key_id] = opened
            while len(self._opened) > CACHED_KEYS:
                self._opened.popitem(last=False)
        made_for, data_key = opened
        if made_for != sha256:  # an object copied under another's name
            raise ObjectAltered(sha256)
        return data_key


def _store_error(exc: StateStoreError) -> ClaimStoreError:
    """The data key could not be kept: a full disk (SQLite's "database or disk is full",
    PostgreSQL's "No space left on device") is said as the store's being full."""
    reason = str(exc)
    if "is full" in reason or "No space left" in reason:
        return ClaimStoreFull(
            f"claim-check store is full (its data key could not be kept: {reason})"
        )
    return ClaimStoreError(f"claim-check store: the object's data key could not be kept ({reason})")


def _within(size: int, max_size: int | None) -> None:
    if max_size is not None and size > max_size:
        raise ObjectTooLarge(max_size, size)


class _KeyedSealer(Sealer):
    def __init__(self, data_key: bytes, header: Header) -> None:
        super().__init__(data_key, header)
        self.data_key = data_key
        self.header = header


def _sealed_whole(sealer: Sealer, data: bytes) -> list[bytes]:
    return [*sealer.feed(data), *sealer.finish()]


class _Coalesced:
    """Writes to an upload gathered into pieces of ``READ_BYTES`` (a thread hop each)."""

    def __init__(self, upload: BlobUpload) -> None:
        self._upload = upload
        self._held: list[bytes] = []
        self._size = 0

    async def write(self, data: bytes) -> None:
        self._held.append(data)
        self._size += len(data)
        if self._size >= READ_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._held:
            data, self._held, self._size = b"".join(self._held), [], 0
            await self._upload.write(data)


async def _records(
    blob: AsyncIterator[bytes], record_bytes: int, wanted: int | None, from_start: bool, sha256: str
) -> AsyncIterator[tuple[bytes, bool | None]]:
    """The stored chunks of a byte range, each with whether it must be the final one: False
    when more follow, True when the object ended there, None when the range did (either)."""
    pending, received = b"", 0
    async for data in blob:
        received += len(data)
        pending = pending + data if pending else data
        offset = 0
        while len(pending) - offset > record_bytes:
            yield pending[offset : offset + record_bytes], False
            offset += record_bytes
        pending = pending[offset:]
    at_end = wanted is None or received < wanted
    if pending:
        yield pending, True if at_end else None
    elif from_start:
        raise ObjectAltered(sha256)  # every object has one chunk at least


class _Plaintext:
    """Pieces of plaintext to hand over; read from the start, the last one is held until the
    final chunk's plaintext hashed to the address (an object read whole)."""

    def __init__(self, sha256: str, *, whole: bool) -> None:
        self._sha256 = sha256
        self._digest = hashlib.sha256() if whole else None
        self._held = b""
        self._cut = self._final = False

    def take(self, chunk: bytes, piece: bytes, final: bool) -> list[bytes]:
        if self._digest is None:
            return [piece] if piece else []
        self._digest.update(chunk)
        self._cut = self._cut or len(piece) != len(chunk)
        self._final = final
        ready, self._held = ([self._held] if self._held else []), piece
        return ready

    def end(self) -> list[bytes]:
        whole = self._digest is not None and self._final and not self._cut
        if whole and self._digest is not None and self._digest.hexdigest() != self._sha256:
            raise ObjectAltered(self._sha256)
        held, self._held = self._held, b""
        return [held] if held else []
