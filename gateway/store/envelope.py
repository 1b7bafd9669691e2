"""The format of an encrypted object: a header, then the plaintext in sealed chunks.

    header   magic (8) | version (1) | chunk size (4, big-endian) | data key id (16) | salt (4)
    chunk i  AES-256-GCM(data key, nonce = salt | i (8, big-endian),
                         plaintext chunk i, associated data = header | i | final flag)
             = the chunk's ciphertext (as long as its plaintext) and a 16-byte tag

Every chunk holds ``chunk size`` bytes of plaintext but the last (the final flag set; an
empty object is one empty final chunk). A chunk's index and final flag are authenticated, and
the whole header with it: a flipped byte, chunks swapped, dropped or cut off, or a header
altered, make a chunk fail to open (``ObjectAltered``). The data key is random per object and
kept apart, wrapped (``gateway.store.datakeys``); its id in the header finds it.

An object that does not start with ``MAGIC`` was stored in clear by an earlier version and is
read as it is (still checked against its SHA-256 when read whole).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.store.reading import ObjectAltered

MAGIC = b"\x89IGENC\r\n"
VERSION = 1
CHUNK_BYTES = 1 << 16
TAG_BYTES = 16
_HEADER = struct.Struct(">8sBI16s4s")
HEADER_BYTES = _HEADER.size  # 33


@dataclass(frozen=True)
class Header:
    chunk_bytes: int
    key_id: bytes  # 16 random bytes
    salt: bytes  # 4 random bytes, the high part of every nonce

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.chunk_bytes, self.key_id, self.salt)

    @property
    def record_bytes(self) -> int:
        """A whole chunk as stored: its ciphertext and its tag."""
        return self.chunk_bytes + TAG_BYTES

    @classmethod
    def new(cls, chunk_bytes: int = CHUNK_BYTES) -> Header:
        return cls(chunk_bytes, os.urandom(16), os.urandom(4))

    @classmethod
    def parse(cls, data: bytes, sha256: str) -> Header | None:
        """The header at the start of ``data``; None for an object in clear (no magic)."""
        if not data.startswith(MAGIC):
            return None
        if len(data) < HEADER_BYTES:
            raise ObjectAltered(sha256)
        _, version, chunk_bytes, key_id, salt = _HEADER.unpack_from(data)
        if version != VERSION or not 0 < chunk_bytes <= 1 << 24:
            raise ObjectAltered(sha256)
        return cls(chunk_bytes, key_id, salt)

    def plaintext_size(self, stored_size: int) -> int:
        """The plaintext's length from the stored object's (every chunk adds its tag)."""
        body = stored_size - HEADER_BYTES
        chunks = max(1, -(-body // self.record_bytes))
        return body - chunks * TAG_BYTES

    def associated(self, index: int, final: bool) -> bytes:
        return self.pack() + struct.pack(">QB", index, final)

    def nonce(self, index: int) -> bytes:
        return self.salt + struct.pack(">Q", index)


class Sealer:
    """Seals a stream: ``feed`` plaintext as it comes, then ``finish``; each yields the bytes to
    store, in order (the header first). One chunk is held until the next byte (or the end) says
    whether it is the last."""

    def __init__(self, data_key: bytes, header: Header) -> None:
        self._cipher = AESGCM(data_key)
        self._header = header
        self._pending = b""
        self._index = 0
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield self._header.pack()
        pending = self._pending + data if self._pending else data
        view, size, offset = memoryview(pending), self._header.chunk_bytes, 0
        while len(pending) - offset > size:  # strictly: a last full chunk may be the final one
            yield self._seal(view[offset : offset + size], final=False)
            offset += size
        self._pending = pending[offset:]

    def finish(self) -> Iterator[bytes]:
        yield from self.feed(b"")
        yield self._seal(self._pending, final=True)
        self._pending = b""

    def _seal(self, chunk: bytes | memoryview, final: bool) -> bytes:
        header, index = self._header, self._index
        self._index += 1
        return self._cipher.encrypt(header.nonce(index), chunk, header.associated(index, final))


class Opener:
    """Opens the stored chunks of one object, given the header and the data key."""

    def __init__(self, data_key: bytes, header: Header, sha256: str) -> None:
        self._cipher = AESGCM(data_key)
        self._header = header
        self._sha256 = sha256

    def open(self, index: int, record: bytes, final: bool | None) -> tuple[bytes, bool]:
        """Chunk ``index``'s plaintext and whether it is the final one. ``final`` None: the
        reader cannot tell (the last chunk of a range), either is accepted."""
        header = self._header
        for flag in (False, True) if final is None else (final,):
            try:
                chunk = self._cipher.decrypt(
                    header.nonce(index),
                    record,
                    header.associated(index, flag),
                )
            except InvalidTag:
                continue
            return chunk, flag
        raise ObjectAltered(self._sha256)
