"""A stream cut into parts, and the multipart upload that sends them, for ``S3ClaimStore``.

A part's bytes are sent as a file read in a thread, without a copy (``Body``): aiohttp sends raw
bytes over 1 MiB from the event loop and warns, and a ``BytesIO`` would copy a ``bytearray``.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import structlog

from gateway.errors import ClaimStoreError
from gateway.store.claims import ObjectTooLarge

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

log = structlog.get_logger(__name__)

Faults = Callable[[str], AbstractContextManager[None]]


def checksum(data: bytes | bytearray) -> str:
    """``x-amz-checksum-sha256``: the base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class Body(io.RawIOBase):
    """Bytes as a readable, seekable file (botocore rewinds it to sign and to retry)."""

    def __init__(self, data: bytes | bytearray) -> None:
        super().__init__()
        self._view, self._position = memoryview(data), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._position + size
        taken = self._view[self._position : end].tobytes()  # one copy, of the bytes asked
        self._position += len(taken)
        return taken

    def readinto(self, buffer: Any) -> int:
        taken = self._view[self._position : self._position + len(buffer)]
        buffer[: len(taken)] = taken
        self._position += len(taken)
        return len(taken)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._view.release()
        super().close()


class Parts:
    """Chunks gathered into parts of ``part_bytes``, with the size and SHA-256 of them all;
    ObjectTooLarge past ``max_size``."""

    def __init__(self, part_bytes: int, max_size: int | None) -> None:
        self.part_bytes, self.max_size = part_bytes, max_size
        self.size, self.pending = 0, bytearray()
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def add(self, chunk: bytes) -> bool:
        """Take ``chunk``; whether a part is full."""
        self.size += len(chunk)
        if self.max_size is not None and self.size > self.max_size:
            raise ObjectTooLarge(self.max_size, self.size)
        self._digest.update(chunk)
        self.pending += chunk
        return len(self.pending) >= self.part_bytes

    def take(self) -> bytearray:
        part, self.pending = self.pending, bytearray()
        return part


class MultipartUpload:
    """One multipart upload to ``key``, each part with its SHA-256 checksum."""

    def __init__(self, client: S3Client, bucket: str, key: str, faults: Faults) -> None:
        self.client, self.bucket, self.key, self._faults = client, bucket, key, faults
        self.upload_id = ""
        self.parts: list[dict[str, Any]] = []

    async def start(self, encryption: dict[str, Any]) -> None:
        with self._faults("starting a multipart upload"):
            started = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ChecksumAlgorithm="SHA256", **encryption
            )
        self.upload_id = started["UploadId"]

    async def send(self, part: bytearray) -> None:
        number, sha256 = len(self.parts) + 1, checksum(part)
        with self._faults("uploading a part"), Body(part) as body:
            sent = await self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=cast(BinaryIO, body),
                ChecksumSHA256=sha256,
            )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"], "ChecksumSHA256": sha256})

    async def complete(self) -> None:
        with self._faults("completing a multipart upload"):
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": cast(Any, self.parts)},
            )

    async def abort(self) -> None:
        """Best effort: a failed abort is logged (the bucket's lifecycle rule ends it)."""
        try:
            with self._faults("aborting a multipart upload"):
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                )
        except ClaimStoreError as exc:
            log.warning("claims.upload_left", key=self.key, error=str(exc))
