"""Hostile HTTP requests against a running server, in both modes: oversized bodies are refused
while reading (413, memory stays flat), and nothing a client can send gets a 5xx: every bad
input is a 4xx in the error envelope, and the keep-alive connection survives it."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import psutil
import pytest

from tests.helpers import create_group, register
from tests.hostile.conftest import count, record_max
from tests.stacks import Stack

MEMORY_BOUND = 64 * 1024 * 1024
MB = 1024 * 1024


def assert_envelope(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["code"], set(body) - {"retry_after"}) == (code, {"code", "msg", "error"})
    assert "Traceback" not in response.text


def _rss(server: Stack) -> int:
    return int(psutil.Process(server.process.pid).memory_info().rss)


async def _stream_until_answered(server: Stack, head: bytes, chunk: bytes, total: int,
                                 ) -> tuple[bytes, int]:
    """Send `head`, then `chunk` repeatedly up to `total` bytes, until the server answers or
    closes; returns its answer and how many body bytes went out."""
    reader, writer = await asyncio.open_connection(server.settings.http.host,
                                                   server.settings.http.port)
    writer.write(head)
    sent = 0
    answer = asyncio.create_task(reader.read(4096))
    try:
        while sent < total and not answer.done():
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 2)
            except (ConnectionError, TimeoutError):
                break
        async with asyncio.timeout(10):
            received = await answer
        while b'"code"' not in received:  # the body may come in a later segment
            async with asyncio.timeout(5):
                more = await reader.read(4096)
            if not more:
                break
            received += more
        return received, sent
    finally:
        writer.transport.abort()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_300_mb_unauthenticated_body_is_refused_while_reading(
    server: Stack, http: httpx.AsyncClient, declared: bool
) -> None:
    baseline = _rss(server)
    started = time.monotonic()
    chunk = b"x" * MB
    if declared:
        head = (b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\n\r\n" % (300 * MB))
        answer, sent = await _stream_until_answered(server, head, chunk, 300 * MB)
    else:
        head = (b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer, sent = await _stream_until_answered(
            server, head, b"%x\r\n%s\r\n" % (len(chunk), chunk), 300 * MB)
    grown = _rss(server) - baseline
    count("http", "inputs tried")
    record_max("http", "oversized body: RSS growth MB", round(grown / MB, 1))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":1012' in answer
    assert sent < 300 * MB  # refused long before the end
    assert grown < MEMORY_BOUND, f"RSS grew by {grown / MB:.0f} MB"
    assert time.monotonic() - started < 10
    assert (await http.get("/health")).status_code == 200


def _deep(depth: int) -> bytes:
    nest = b"[" * depth + b"]" * depth
    return b'{"name": "n", "password": "pass-word-1", "extra": ' + nest + b"}"


async def test_bad_json_bodies_are_4xx_and_keep_alive_survives(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice = await register(http)
    bodies = [
        _deep(1000), _deep(100_000), b"[" * 200_000,
        b'{"seq": ' + b"9" * 5000 + b"}",
        b'{"name": "\\ud800", "password": "pass-word-1"}',
        b'{"name": "a", "password": "\\udfff\\ud800"}',
        b"\xff\xfe\x00", b"null", b"[]", b'"text"', b"1e999999", b"NaN",
    ]
    paths = ["/api/auth/register", "/api/auth/login", "/api/threads", "/api/me"]
    async with httpx.AsyncClient(base_url=f"http://{server.settings.http}",
                                 limits=httpx.Limits(max_connections=1)) as one:
        for path in paths:
            for body in bodies:
                method = "PATCH" if path == "/api/me" else "POST"
                response = await one.request(method, path, content=body, headers={
                    **alice.auth, "Content-Type": "application/json"})
                count("http", "inputs tried")
                assert 400 <= response.status_code < 500, (path, body[:40], response.text)
                assert response.json()["code"] != 0
        # Still the one connection, and still serving.
        assert (await one.get("/api/me", headers=alice.auth)).status_code == 200


async def test_out_of_range_numbers_and_ids_are_4xx(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    cases = [
        ("GET", f"/api/threads/{thread_id}/messages?after_seq={2**63}", 400, 1001),
        ("GET", f"/api/threads/{thread_id}/messages?before_seq={'9' * 5000}", 400, 1001),
        ("GET", f"/api/threads/{thread_id}/messages?limit=-1", 400, 1001),
        ("GET", f"/api/threads/{'t' * 300}/messages", 404, 1005),
        ("GET", f"/api/users/{'u' * 65}", 404, 1005),
        ("GET", f"/api/friends/groups/{2**63}", 404, 1005),
        ("GET", f"/api/friends/groups/{'9' * 30}/members", 404, 1005),
        ("POST", f"/api/friends/requests/{2**64}/accept", 404, 1005),
        ("DELETE", f"/api/admin/acl/rules/{'1' * 40}", 404, 1005),
        ("GET", "/api/threads/t%00x/messages", 404, 1005),
        ("GET", "/api/users?q=%ff%fe", 200, 0),
    ]
    for method, path, status, code in cases:
        response = await http.request(method, path, headers=alice.auth)
        count("http", "inputs tried")
        if code:
            assert_envelope(response, status, code)
        else:
            assert response.status_code == status, (path, response.text)
    read = await http.post(f"/api/threads/{thread_id}/read", headers=alice.auth,
                           json={"seq": 2**63})
    assert_envelope(read, 400, 1001)
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                           content=json.dumps({"client_msg_id": "c\0", "body": "x"}))
    assert_envelope(sent, 400, 1001)
