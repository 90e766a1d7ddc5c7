"""Uploads in S3-compatible object storage (AWS S3, MinIO, Ceph, ...) through aiobotocore.

A put streams: objects up to one part (8 MiB) go up in one PutObject, larger ones as a multipart
upload of 8 MiB parts, so at most one part is held in memory per upload. Past the size cap, or on
any failure, the multipart upload is aborted (S3 then drops its parts): nothing is kept. Reads
are handed out as presigned GET URLs, so the bytes never pass through mqim.

Each call opens a client from one shared session (the session caches the service model, so a
client costs little); nothing stays connected between calls, and nothing needs closing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from config.urls import StorageUrl
from storage.base import Download, Meter, Stored, check_key, content_disposition

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

PART_BYTES = 8 * 1024 * 1024  # S3 wants parts of 5 MiB or more, except the last
PRESIGN_SECONDS = 300
_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Storage:
    """MQIM_STORAGE_URL=s3://bucket[/prefix]?endpoint=...&region=..."""

    def __init__(self, url: StorageUrl) -> None:
        self.url = url
        self.bucket = url.bucket
        self._session = get_session()
        # Path-style addressing works with every S3-compatible server; virtual-host style needs
        # DNS for each bucket.
        self._config = AioConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                              retries={"max_attempts": 3, "mode": "standard"})

    def _client(self) -> contextlib.AbstractAsyncContextManager[S3Client]:
        url = self.url
        client: contextlib.AbstractAsyncContextManager[S3Client] = self._session.create_client(
            "s3", endpoint_url=url.endpoint, region_name=url.region or "us-east-1",
            aws_access_key_id=url.access_key, aws_secret_access_key=url.secret_key,
            config=self._config,
        )
        return client

    def _key(self, key: str) -> str:
        return self.url.prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (tests and benchmarks; production makes its own)."""
        async with self._client() as s3:
            try:
                await s3.head_bucket(Bucket=self.bucket)
            except ClientError:
                await s3.create_bucket(Bucket=self.bucket)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int,
                  content_type: str) -> Stored:
        name = self._key(key)
        meter = Meter(max_bytes)
        stream = meter.stream(chunks)
        async with self._client() as s3:
            first = await _fill(stream, PART_BYTES)
            if len(first) < PART_BYTES:  # the whole object fits one request
                await s3.put_object(Bucket=self.bucket, Key=name, Body=first,
                                    ContentType=content_type)
                return meter.result()
            upload = await s3.create_multipart_upload(Bucket=self.bucket, Key=name,
                                                      ContentType=content_type)
            upload_id = upload["UploadId"]
            try:
                parts: list[Any] = []
                part = first
                while part:
                    done = await s3.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                                PartNumber=len(parts) + 1, Body=part)
                    parts.append({"ETag": done["ETag"], "PartNumber": len(parts) + 1})
                    part = await _fill(stream, PART_BYTES)
                await s3.complete_multipart_upload(Bucket=self.bucket, Key=name,
                                                   UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
            except BaseException:
                with contextlib.suppress(Exception):
                    await s3.abort_multipart_upload(Bucket=self.bucket, Key=name,
                                                    UploadId=upload_id)
                raise
        return meter.result()

    async def get(self, key: str, *, filename: str, content_type: str) -> Download:
        if not await self.exists(key):
            raise FileNotFoundError(key)
        async with self._client() as s3:
            url = await s3.generate_presigned_url(
                "get_object", ExpiresIn=PRESIGN_SECONDS, Params={
                    "Bucket": self.bucket, "Key": self._key(key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": content_disposition(filename),
                })
        return Download(url=url)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self._client() as s3:
            try:
                answer = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise FileNotFoundError(key) from exc
                raise
            async with answer["Body"] as body:
                while chunk := await body.read(256 * 1024):
                    yield chunk

    async def delete(self, key: str) -> None:
        async with self._client() as s3:
            await s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def exists(self, key: str) -> bool:
        async with self._client() as s3:
            try:
                await s3.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
        return True


async def _fill(stream: AsyncIterator[bytes], size: int) -> bytes:
    """Up to `size` bytes from the stream (fewer only at its end)."""
    buf = bytearray()
    while len(buf) < size:
        try:
            buf += await anext(stream)
        except StopAsyncIteration:
            break
    return bytes(buf)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
