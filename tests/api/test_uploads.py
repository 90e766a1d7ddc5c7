"""Uploads over HTTP (docs/http-api.md, "Uploads"), on both stacks with the default local-disk
backend, and on a stack whose storage is S3 (a real moto server, tests/storage/moto.py).

Oversized bodies go through a raw socket: the test must see the 413 while it is still sending
(a Content-Length over the cap answered after 1 KiB of the body; an endless chunked body cut off
once past the cap), which a client that first sends its whole body cannot show.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from config import Settings
from storage import S3Storage
from tests.helpers import Account, register
from tests.stacks import Stack
from tests.storage.stack import s3_stack

BOUNDARY = "mqimtestboundary"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG")
    return out.getvalue()


async def upload(http: httpx.AsyncClient, who: Account, data: bytes, name: str = "a.png",
                 content_type: str = "image/png") -> httpx.Response:
    return await http.post("/api/uploads", headers=who.auth,
                           files={"file": (name, data, content_type)})


def stored_files(settings: Settings) -> set[str]:
    root = settings.data_dir / "uploads"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def upload_rows(settings: Settings) -> int:
    url = settings.db_url
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").split("?", 1)[0]

        def count() -> int:
            with sqlite3.connect(path, timeout=10) as db:
                (n,) = db.execute("SELECT count(*) FROM upload").fetchone()
            db.close()
            return int(n)

        return await asyncio.to_thread(count)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM upload"))
    finally:
        await conn.close()


async def raw_post(settings: Settings, headers: dict[str, str], body: AsyncIterator[bytes],
                   path: str = "/api/uploads") -> tuple[int, dict[str, Any]]:
    """POST to `path`, sending `body` while reading the answer: (status, JSON body)."""
    reader, writer = await asyncio.open_connection(settings.http.host, settings.http.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: test\r\n{head}\r\n".encode())

    async def pump() -> None:
        try:
            async for chunk in body:
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass  # the server answered and closed: what the test waits for

    sending = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(30):
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = json.loads(await reader.readexactly(length))
    finally:
        sending.cancel()
        writer.close()
    return status, answer


def part_head(name: str = "big.bin") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()


async def test_image_round_trip_and_only_the_owner_reads_it(
        server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    data = png(37, 23)
    # The client's type is not trusted: the bytes say PNG.
    answer = await upload(http, alice, data, content_type="text/html")
    assert answer.status_code == 201, answer.text
    view = answer.json()["data"]
    assert (view["width"], view["height"], view["size"]) == (37, 23, len(data))
    assert view["content_type"] == "image/png"
    assert view["name"] == "a.png"
    assert view["url"] == f"/api/uploads/{view['upload_id']}"

    got = await http.get(view["url"], headers=alice.auth)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("attachment;")

    for caller in (bob.auth, {}):
        denied = await http.get(view["url"], headers=caller)
        assert denied.status_code == (404 if caller else 401)
    denied = await http.get(view["url"], headers=bob.auth)
    assert (denied.json()["code"], denied.json()["error"]) == (4007, "upload_not_found")
    unknown = await http.get("/api/uploads/f0000", headers=alice.auth)
    assert unknown.json()["code"] == 4007  # the same answer as someone else's upload


async def test_types_are_sniffed_and_names_sanitised(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    # Built by hand: httpx would percent-encode the control characters.
    body = (part_head("../../etc/pass\x01wd\x7f.pdf").replace(b"octet-stream", b"image/png")
            + b"%PDF-1.7\n..." + f"\r\n--{BOUNDARY}--\r\n".encode())
    answer = await http.post("/api/uploads", content=body, headers={
        **alice.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    view = answer.json()["data"]
    assert view["content_type"] == "application/pdf"
    assert view["name"] == "pass_wd_.pdf"
    assert view["width"] is None
    assert view["height"] is None
    text = await upload(http, alice, b"hello", name="..\\..\\x.txt", content_type="text/html")
    assert text.json()["data"]["content_type"] == "application/octet-stream"
    assert text.json()["data"]["name"] == "x.txt"
    # A PNG header that lies about being 100000 x 100000 pixels gets no dimensions.
    bomb = bytearray(png(1, 1))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2
    lying = await upload(http, alice, bytes(bomb))
    assert lying.status_code == 201
    assert lying.json()["data"]["width"] is None


async def test_bad_uploads_are_refused(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    empty = await upload(http, alice, b"")
    assert (empty.status_code, empty.json()["code"]) == (400, 1001)
    no_file = await http.post("/api/uploads", headers=alice.auth, files={"other": ("a", b"x")})
    assert (no_file.status_code, no_file.json()["code"]) == (400, 1001)
    not_multipart = await http.post("/api/uploads", headers=alice.auth, json={"file": "x"})
    assert (not_multipart.status_code, not_multipart.json()["code"]) == (400, 1001)
    anonymous = await http.post("/api/uploads", files={"file": ("a", b"x")})
    assert anonymous.status_code == 401


async def test_a_content_length_over_the_cap_is_refused_before_reading(
        server: Stack, http: httpx.AsyncClient) -> None:
    alice = await register(http)
    files, rows = stored_files(server.settings), await upload_rows(server.settings)
    claimed = server.settings.max_upload_bytes + 1024 * 1024

    async def one_kib_only() -> AsyncIterator[bytes]:
        yield part_head() + b"x" * 1024
        await asyncio.sleep(3600)  # never sends the rest: the answer must not wait for it

    status, body = await raw_post(server.settings, {
        **alice.auth, "Content-Length": str(claimed),
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, one_kib_only())
    assert (status, body["code"], body["error"]) == (413, 4008, "upload_too_large")
    assert stored_files(server.settings) == files
    assert await upload_rows(server.settings) == rows


async def test_a_chunked_body_is_cut_off_past_the_cap(server: Stack,
                                                     http: httpx.AsyncClient) -> None:
    alice = await register(http)
    files, rows = stored_files(server.settings), await upload_rows(server.settings)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        block = os.urandom(64 * 1024)
        first = part_head()
        while True:  # the server must stop reading: the answer proves it did
            data = first + block
            first = b""
            sent += len(data)
            yield f"{len(data):x}\r\n".encode() + data + b"\r\n"

    status, body = await raw_post(server.settings, {
        **alice.auth, "Transfer-Encoding": "chunked",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, endless())
    assert (status, body["code"]) == (413, 4008)
    assert sent > server.settings.max_upload_bytes
    assert stored_files(server.settings) == files  # the partial file was removed
    assert await upload_rows(server.settings) == rows


# ---- S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def s3_served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """`mqim serve` (embedded, SQLite) storing uploads in a moto S3 bucket, with a 200 KB cap."""
    async with s3_stack(tmp_path_factory.mktemp("s3-stack"), max_upload_bytes=200_000) as stack:
        yield stack


async def test_s3_round_trip_redirects_to_a_presigned_url(s3_served: Stack) -> None:
    storage = S3Storage(s3_served.settings.storage())
    async with httpx.AsyncClient(base_url=f"http://{s3_served.settings.http}",
                                 timeout=10) as http:
        alice, bob = await register(http), await register(http)
        data = png(64, 48)
        view = (await upload(http, alice, data, name="ü.png")).json()["data"]
        assert (view["width"], view["height"]) == (64, 48)
        assert await storage.exists(f"uploads/{view['upload_id']}")

        got = await http.get(view["url"], headers=alice.auth)
        assert got.status_code == 302
        fetched = await http.get(got.headers["location"])
        assert fetched.content == data
        assert fetched.headers["content-type"] == "image/png"
        assert "filename*=UTF-8''%C3%BC.png" in fetched.headers["content-disposition"]
        assert (await http.get(view["url"], headers=bob.auth)).status_code == 404

        rows = await upload_rows(s3_served.settings)
        status, body = await raw_post(s3_served.settings, {
            **alice.auth, "Transfer-Encoding": "chunked",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, _chunked(300_000))
        assert (status, body["code"]) == (413, 4008)
        assert await upload_rows(s3_served.settings) == rows
    async with storage._client() as s3:
        listed = await s3.list_objects_v2(Bucket=storage.bucket)
        assert [o["Key"] for o in listed.get("Contents", [])] == [f"uploads/{view['upload_id']}"]
        pending = await s3.list_multipart_uploads(Bucket=storage.bucket)
        assert pending.get("Uploads", []) == []


async def _chunked(size: int) -> AsyncIterator[bytes]:
    data = part_head() + os.urandom(size) + f"\r\n--{BOUNDARY}--\r\n".encode()
    for start in range(0, len(data), 32 * 1024):
        piece = data[start:start + 32 * 1024]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"
