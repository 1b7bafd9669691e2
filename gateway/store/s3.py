"""The claim-check store on an S3-compatible object store (AWS S3, SeaweedFS, MinIO...).

Objects are kept under ``<prefix>/objects/ab/cd/<sha256>`` and named ``s3://bucket/<key>`` in
events. Content-addressed and idempotent: a HEAD first, and nothing is sent when the object is
already there; concurrent puts of the same bytes write the same bytes to the same key.

- Up to one part (8 MiB), an object is one PutObject carrying its ``ChecksumSHA256``: the server
  refuses bytes that do not hash to it (SeaweedFS checks it too, answering BadDigest).
- A longer stream is a multipart upload to ``<prefix>/incoming/<uuid>``, parts of 8 MiB sent as
  they are read (memory: one part), each with its own checksum, the object's SHA-256 computed as
  it goes; then a server-side CopyObject to the content key and the temp key deleted. CopyObject
  copies up to 5 GiB in one request (larger would need UploadPartCopy, far beyond the gateway's
  size limits). Past ``max_size``, or on any failure, the upload is aborted: nothing is left.
  Should the clean-up itself fail (the store gone at that moment), a bucket lifecycle rule on
  ``incoming/`` (expiration, AbortIncompleteMultipartUpload) removes what remains.
- ``server_side_encryption`` (AES256, aws:kms) is asked on every write: put, upload, copy.
- Errors are the gateway's: no such key is ClaimNotFound; an unreachable endpoint, a 5xx,
  refused credentials or a missing bucket a ClaimStoreError saying which. ``check`` turns the
  same faults at start-up into a ConfigurationError naming the setting at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self, cast

import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from gateway.errors import ClaimNotFound, ClaimStoreError
from gateway.store.claims import StoredObject
from gateway.store.reading import READ_BYTES, check_range, verified
from gateway.store.s3_faults import NOT_FOUND, code_of, describe, startup_error
from gateway.store.s3_multipart import Body, MultipartUpload, Parts, checksum
from gateway.store.s3_upload import S3Upload

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.literals import ServerSideEncryptionType

log = structlog.get_logger(__name__)

PART_BYTES = 8 << 20  # parts of a multipart upload (S3's minimum is 5 MiB but for the last)
FAULTS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)  # TimeoutError is an OSError


class S3ClaimStore:
    """Content-addressed objects in ``bucket`` under ``prefix``; one client, opened by ``open``
    (or ``async with``) and closed by ``close``."""

    def __init__(  # noqa: PLR0913 - the S3 settings, one by one
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        server_side_encryption: str | None = None,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint_url or f"AWS S3 ({region})"
        self.part_bytes = part_bytes
        self._endpoint_url, self._region = endpoint_url, region
        self._keys = (access_key_id, secret_access_key)
        self._sse: dict[str, Any] = (
            {"ServerSideEncryption": cast("ServerSideEncryptionType", server_side_encryption)}
            if server_side_encryption
            else {}
        )
        self._stack: AsyncExitStack | None = None
        self._s3: S3Client | None = None

    # -- lifecycle

    async def open(self) -> None:
        if self._s3 is not None:
            return
        config = AioConfig(
            connect_timeout=5,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
            s3={"addressing_style": "path" if self._endpoint_url else "auto"},
        )
        access_key_id, secret_access_key = self._keys
        stack = AsyncExitStack()
        client = get_session().create_client(
            "s3",
            endpoint_url=self._endpoint_url,
            region_name=self._region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        self._s3 = await stack.enter_async_context(client)
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack, self._s3 = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def check(self) -> None:
        """At start-up: the bucket exists and the credentials work (a listing of one key),
        else a one-line ConfigurationError naming the setting at fault."""
        try:
            await self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except FAULTS as exc:
            raise startup_error(exc, self.bucket, self.endpoint) from exc

    # -- addresses

    def key_of(self, sha256: str) -> str:
        return self._key(f"objects/{sha256[:2]}/{sha256[2:4]}/{sha256}")

    def uri_of(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{self.key_of(sha256)}"

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    @property
    def _client(self) -> S3Client:
        if self._s3 is None:
            raise ClaimStoreError("S3 claim store used before open()")
        return self._s3

    @contextlib.contextmanager
    def _faults(self, doing: str, sha256: str | None = None) -> Iterator[None]:
        """The client's exceptions as the gateway's: ClaimNotFound for a missing ``sha256``."""
        try:
            yield
        except ClientError as exc:
            if sha256 is not None and code_of(exc) in NOT_FOUND:
                raise ClaimNotFound(f"no object {sha256}") from None
            raise ClaimStoreError(describe(exc, doing, self.bucket, self.endpoint)) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise ClaimStoreError(describe(exc, doing, self.bucket, self.endpoint)) from exc

    # -- writing

    async def put(self, data: bytes) -> StoredObject:
        return await self._put_known(data, hashlib.sha256(data).hexdigest())

    async def put_stream(
        self, chunks: AsyncIterable[bytes], max_size: int | None = None
    ) -> StoredObject:
        parts = Parts(self.part_bytes, max_size)
        stream = aiter(chunks)
        async for chunk in stream:
            if parts.add(chunk):
                break
        else:
            return await self._put_known(parts.take(), parts.sha256)
        upload = MultipartUpload(
            self._client, self.bucket, self._key(f"incoming/{uuid.uuid4()}"), self._faults
        )
        await upload.start(self._sse)
        try:
            await upload.send(parts.take())
            async for chunk in stream:
                if parts.add(chunk):
                    await upload.send(parts.take())
            if parts.pending:
                await upload.send(parts.take())
            await upload.complete()
        except BaseException:
            await upload.abort()
            raise
        return await self._commit(upload.key, parts.sha256, parts.size)

    async def _put_known(self, data: bytes | bytearray, sha256: str) -> StoredObject:
        if not await self.exists(sha256):
            with self._faults("storing an object"), Body(data) as body:
                await self._client.put_object(
                    Bucket=self.bucket,
                    Key=self.key_of(sha256),
                    Body=cast(BinaryIO, body),
                    ChecksumSHA256=checksum(data),
                    **self._sse,
                )
        return StoredObject(sha256, len(data), self.uri_of(sha256))

    async def _commit(self, temp: str, sha256: str, size: int) -> StoredObject:
        """The uploaded temp object copied under its content key (unless already there), then
        deleted whatever happens."""
        try:
            if not await self.exists(sha256):
                with self._faults("copying an upload to its content key"):
                    await self._client.copy_object(
                        Bucket=self.bucket,
                        Key=self.key_of(sha256),
                        CopySource={"Bucket": self.bucket, "Key": temp},
                        **self._sse,
                    )
        finally:
            await self._discard(temp)
        return StoredObject(sha256, size, self.uri_of(sha256))

    async def _discard(self, temp: str) -> None:
        try:
            with self._faults("deleting an upload's temp key"):
                await self._client.delete_object(Bucket=self.bucket, Key=temp)
        except ClaimStoreError as exc:
            log.warning("claims.temp_key_left", key=temp, error=str(exc))

    # -- reading

    async def exists(self, sha256: str) -> bool:
        try:
            await self.size(sha256)
        except ClaimNotFound:
            return False
        return True

    async def size(self, sha256: str) -> int:
        with self._faults("reading an object's size", sha256):
            head = await self._client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        return head["ContentLength"]

    async def get(self, sha256: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(sha256)])

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._read(sha256, start, end, verify=True)

    async def _read(
        self, sha256: str, start: int, end: int | None, *, verify: bool
    ) -> AsyncIterator[bytes]:
        check_range(start, end)
        if end is not None and end == start:
            await self.size(sha256)  # ClaimNotFound all the same
            return
        asked: dict[str, Any] = {}
        if start > 0 or end is not None:
            asked["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self._faults("reading an object", sha256):
            try:
                answer = await self._client.get_object(
                    Bucket=self.bucket, Key=self.key_of(sha256), **asked
                )
            except ClientError as exc:
                if code_of(exc) != "InvalidRange":
                    raise
                return  # the range starts at or past the end: no bytes
        total = int(answer.get("ContentRange", f"/{answer['ContentLength']}").rsplit("/", 1)[1])
        chunks = self._body(answer["Body"], sha256)
        if verify and start == 0 and answer["ContentLength"] == total:
            chunks = verified(sha256, chunks)
        async for chunk in chunks:
            yield chunk

    async def _body(self, body: Any, sha256: str) -> AsyncIterator[bytes]:
        async with body:
            with self._faults("reading an object", sha256):
                async for chunk in body.iter_chunks(READ_BYTES):
                    yield chunk

    @contextlib.asynccontextmanager
    async def spool(self, sha256: str) -> AsyncIterator[BinaryIO]:
        """A temp file of the object, downloaded (and checked) a chunk at a time; removed when
        the context ends."""
        spooled = cast(BinaryIO, await asyncio.to_thread(tempfile.TemporaryFile))
        try:
            async for chunk in self.read(sha256):
                await asyncio.to_thread(spooled.write, chunk)
            spooled.seek(0)
            yield spooled
        finally:
            spooled.close()

    async def delete(self, sha256: str) -> None:
        with self._faults("deleting an object"):
            await self._client.delete_object(Bucket=self.bucket, Key=self.key_of(sha256))

    # -- as a BlobStore (``gateway.store.blobs``, for the encrypting store): named bytes

    def upload(self) -> S3Upload:
        return S3Upload(self)

    def read_blob(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._read(name, start, end, verify=False)

    async def start_upload(self) -> MultipartUpload:
        upload = MultipartUpload(
            self._client, self.bucket, self._key(f"incoming/{uuid.uuid4()}"), self._faults
        )
        await upload.start(self._sse)
        return upload

    async def store_as(self, name: str, data: bytes | bytearray) -> None:
        """``data`` under ``name`` in one PutObject (the caller saw none there)."""
        with self._faults("storing an object"), Body(data) as body:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=self.key_of(name),
                Body=cast(BinaryIO, body),
                ChecksumSHA256=checksum(data),
                **self._sse,
            )

    async def commit_upload(self, temp: str, name: str) -> None:
        """A completed upload copied under ``name``, then its temp key deleted."""
        try:
            with self._faults("copying an upload to its content key"):
                await self._client.copy_object(
                    Bucket=self.bucket,
                    Key=self.key_of(name),
                    CopySource={"Bucket": self.bucket, "Key": temp},
                    **self._sse,
                )
        finally:
            await self._discard(temp)
