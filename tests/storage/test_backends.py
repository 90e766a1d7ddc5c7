"""Both storage backends, directly: local disk in a temporary directory, and S3 against a real
moto server process (tests/storage/moto.py). put/get/read/delete/exists, the size cap mid-stream
(nothing kept), multipart uploads past one part, and hostile keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from config.urls import parse_storage_url
from storage import LocalStorage, S3Storage, Storage, TooLargeError
from storage.s3 import PART_BYTES
from tests.storage.moto import moto_server, storage_url


@pytest.fixture(scope="module")
async def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path, moto_endpoint: str) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "uploads")
    url = storage_url(moto_endpoint, "mqim-test", "pre")
    s3 = S3Storage(parse_storage_url(url, tmp_path))
    await s3.ensure_bucket()
    return s3


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def fetched(storage: Storage, key: str) -> bytes:
    """The bytes as a client gets them: streamed (local) or from the presigned URL (S3)."""
    how = await storage.get(key, filename="a b/é.txt", content_type="text/plain")
    if how.url is None:
        assert how.chunks is not None
        return await collect(how.chunks)
    async with httpx.AsyncClient() as client:
        answer = await client.get(how.url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain"
    assert "filename*=UTF-8''a%20b/%C3%A9.txt" in answer.headers["content-disposition"]
    return answer.content


@pytest.mark.parametrize("size", [1, 100_000, PART_BYTES + 12_345])
async def test_put_get_delete_round_trip(storage: Storage, size: int) -> None:
    data = os.urandom(size)
    key = f"uploads/k{size}"
    assert not await storage.exists(key)
    stored = await storage.put(key, chunked(data), max_bytes=size, content_type="text/plain")
    assert (stored.size, stored.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert await storage.exists(key)
    assert await collect(storage.read(key)) == data
    assert await fetched(storage, key) == data
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)  # already gone: no error
    with pytest.raises(FileNotFoundError):
        await storage.get(key, filename="x", content_type="text/plain")
    with pytest.raises(FileNotFoundError):
        await collect(storage.read(key))


@pytest.mark.parametrize("size", [100_000, PART_BYTES * 2 + 1])
async def test_over_the_cap_stops_mid_stream_and_keeps_nothing(storage: Storage,
                                                                 size: int) -> None:
    pulled = 0
    cap = size - 1

    async def counted() -> AsyncIterator[bytes]:
        nonlocal pulled
        async for chunk in chunked(os.urandom(size) + os.urandom(4 * PART_BYTES)):
            pulled += len(chunk)
            yield chunk

    with pytest.raises(TooLargeError):
        await storage.put("uploads/big", counted(), max_bytes=cap, content_type="text/plain")
    assert pulled <= size + 64 * 1024  # stopped within one chunk of the cap
    assert not await storage.exists("uploads/big")
    if isinstance(storage, LocalStorage):
        assert [p.name for p in storage.root.rglob("*") if p.is_file()] == []
    else:
        assert isinstance(storage, S3Storage)
        async with storage._client() as s3:
            pending = await s3.list_multipart_uploads(Bucket=storage.bucket)
            assert pending.get("Uploads", []) == []  # the multipart upload was aborted


async def test_a_failing_stream_leaves_nothing(storage: Storage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (PART_BYTES + 1)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put("uploads/broken", broken(), max_bytes=10 * PART_BYTES,
                          content_type="text/plain")
    assert not await storage.exists("uploads/broken")


@pytest.mark.parametrize("key", ["../escape", "/abs", "uploads/../x", "a//b", "", "a/b c",
                                 "uploads/.hidden/..", "a\\b"])
async def test_hostile_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="bad storage key"):
        await storage.put(key, chunked(b"x"), max_bytes=10, content_type="text/plain")
    with pytest.raises(ValueError, match="bad storage key"):
        await storage.exists(key)
