"""An upload of bytes to a name chosen at the end (``gateway.store.blobs``) on S3: one
PutObject when it stays within one part, else a multipart upload to a temp key, copied under
its name on commit. Memory: one part."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.s3_multipart import MultipartUpload, Parts

if TYPE_CHECKING:
    from gateway.store.s3 import S3ClaimStore


class S3Upload:
    def __init__(self, store: S3ClaimStore) -> None:
        self._store = store
        self._parts = Parts(store.part_bytes, None)
        self._multipart: MultipartUpload | None = None

    async def write(self, data: bytes) -> None:
        if not self._parts.add(data):
            return
        if self._multipart is None:
            self._multipart = await self._store.start_upload()
        await self._multipart.send(self._parts.take())

    async def commit(self, name: str) -> None:
        upload, self._multipart = self._multipart, None
        if upload is None:
            await self._store.store_as(name, self._parts.take())
            return
        try:
            if self._parts.pending:
                await upload.send(self._parts.take())
            await upload.complete()
        except BaseException:
            await upload.abort()
            raise
        await self._store.commit_upload(upload.key, name)

    async def abort(self) -> None:
        self._parts.take()
        upload, self._multipart = self._multipart, None
        if upload is not None:
            await upload.abort()
