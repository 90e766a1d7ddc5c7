"""Outgoing webhooks over real HTTP on both stacks (docs/webhooks.md), delivered to a real
receiver (Starlette under uvicorn in the test process) that verifies every signature with the
hook's secret: server hooks (admins only) and their kinds filter, bot hooks (their bot's threads
only, `mention`, never the bot's own messages), the owner's views, and hostile URLs refused by
the validator."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actions.webhooks import check_url
from contract.errors import InvalidParameterError
from tests.api.test_accounts import assert_error
from tests.helpers import Account, create_group, free_port, register, unique_id
from tests.stacks import Stack

FORBIDDEN = (403, 1004, "forbidden")
INVALID = (400, 1001, "invalid_parameter")
NOT_FOUND = (404, 1005, "not_found")


@dataclass
class Receiver:
    """What a receiver got: `accepted` the verified deliveries it answered 2xx, `failed` how
    many it answered 500 (while `fail` says so)."""

    url: str
    secrets: dict[int, str] = field(default_factory=dict)  # hook id -> secret
    accepted: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    fail: Callable[[Receiver], bool] = lambda r: False
    accepted_at: list[float] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        payload = json.loads(raw)
        timestamp = request.headers["x-mqim-timestamp"]
        secret = self.secrets[payload["hook_id"]]
        expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + raw,
                                        hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-mqim-signature"], expected)
        assert abs(time.time() - int(timestamp)) < 300
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-mqim-event"] == payload["kind"]
        if self.fail(self):
            self.failed += 1
            return Response(status_code=500)
        self.accepted.append({**payload, "delivery": int(request.headers["x-mqim-delivery"])})
        self.accepted_at.append(time.monotonic())
        return Response(status_code=204)

    def events(self, thread_id: str) -> list[dict[str, Any]]:
        return [p for p in self.accepted if p["event"]["thread_id"] == thread_id]

    async def wait_for(self, check: Callable[[], bool], seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, f"receiver got {self.accepted}"
            await asyncio.sleep(0.05)  # polling what the worker delivers


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}/hook")
    app = Starlette(routes=[Route("/hook", got.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  # uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield got
    finally:
        server.should_exit = True
        await task


async def add_hook(http: httpx.AsyncClient, who: Account, got: Receiver,
                   **body: Any) -> dict[str, Any]:
    response = await http.post("/api/webhooks", headers=who.auth, json={"url": got.url, **body})
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()["data"]
    assert len(hook["secret"]) == 64
    assert hook["active"] is True
    got.secrets[hook["id"]] = hook["secret"]
    return hook


async def send(http: httpx.AsyncClient, who: Account, thread_id: str, body: str,
               **extra: Any) -> dict[str, Any]:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=who.auth,
                               json={"body": body, **extra})
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def make_admin(server: Stack, http: httpx.AsyncClient) -> Account:
    admin = await register(http)
    await server.cli("admin", "grant", admin.user_id)
    return admin


@pytest.mark.parametrize("url", [
    "http://example.com/hook",  # https only
    "https://127.0.0.1/hook", "https://10.1.2.3/", "https://192.168.0.1/", "https://[::1]/",
    "https://169.254.169.254/latest/meta-data", "https://[::ffff:127.0.0.1]/", "https://0.0.0.0/",
    "https://localhost:8443/", "ftp://example.com/", "javascript:alert(1)", "https:///nohost",
    "https://exa mple.com/", "https://example.com/\n", "https://[::1/", "https://x:99999/",
    "https://example.com/" + "a" * 2048, "file:///etc/passwd",
])
async def test_validator_refuses_hostile_urls(url: str) -> None:
    with pytest.raises(InvalidParameterError):
        await check_url(url, allow_insecure=False)


async def test_validator_accepts_public_https_and_insecure_when_allowed() -> None:
    assert await check_url("https://93.184.216.34/hook?x=1", False)
    assert await check_url("http://127.0.0.1:8080/hook", True)
    with pytest.raises(InvalidParameterError):
        await check_url("gopher://127.0.0.1/", True)


async def test_server_hook_is_signed_filtered_and_admins_only(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    admin, alice, bob, carol = (await make_admin(server, http), await register(http),
                                await register(http), await register(http))
    async with receiver() as got:
        assert_error(await http.post("/api/webhooks", headers=alice.auth, json={"url": got.url}),
                     *FORBIDDEN)
        assert_error(await http.post("/api/webhooks", headers=admin.auth,
                                     json={"url": got.url, "events": ["nope"]}), *INVALID)
        hook = await add_hook(http, admin, got, events=["message", "member_joined"])
        thread_id = await create_group(http, alice, bob)
        sent = await send(http, alice, thread_id, "hello hooks")
        await http.post(f"/api/threads/{thread_id}/messages/{sent['message_id']}/reactions",
                        headers=bob.auth, json={"emoji": "👍"})
        added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                                json={"user_ids": [carol.user_id]})
        assert added.is_success, added.text
        await send(http, bob, thread_id, "second")
        await got.wait_for(lambda: len([e for e in got.events(thread_id)
                                        if e["kind"] == "message"]) == 2
                           and any(e["kind"] == "member_joined" for e in got.events(thread_id)))
        events = got.events(thread_id)
        kinds = [e["kind"] for e in events]
        assert set(kinds) <= {"message", "member_joined"}  # no reaction: not asked for
        first = next(e for e in events if e["kind"] == "message")
        assert first["hook_id"] == hook["id"]
        assert first["event"]["type"] == "message"
        assert first["event"]["message_id"] == sent["message_id"]
        assert first["event"]["body"] == "hello hooks"
        assert first["event"]["sender_id"] == alice.user_id
        seqs = [e["event"]["seq"] for e in events]
        assert seqs == sorted(seqs)  # in timeline order

        # The owner's views: listed for admins only, deliveries, refused to others.
        listed = (await http.get("/api/webhooks", headers=admin.auth)).json()["data"]
        assert hook["id"] in [h["id"] for h in listed]
        assert all("secret" not in h for h in listed)
        assert (await http.get("/api/webhooks", headers=alice.auth)).json()["data"] == []
        rows = (await http.get(f"/api/webhooks/{hook['id']}/deliveries", headers=admin.auth,
                               params={"status": "delivered", "limit": 200})).json()["data"]
        assert rows
        assert all(r["status"] == "delivered" and r["attempts"] == 1 for r in rows)
        assert rows == sorted(rows, key=lambda r: -r["id"])
        assert_error(await http.get(f"/api/webhooks/{hook['id']}/deliveries",
                                    headers=admin.auth, params={"status": "x"}), *INVALID)
        for method, path in (("DELETE", f"/api/webhooks/{hook['id']}"),
                             ("GET", f"/api/webhooks/{hook['id']}/deliveries"),
                             ("POST", f"/api/webhooks/{hook['id']}/replay")):
            assert_error(await http.request(method, path, headers=alice.auth), *NOT_FOUND)
        deleted = await http.delete(f"/api/webhooks/{hook['id']}", headers=admin.auth)
        assert deleted.json()["data"] == {"id": hook["id"], "deleted": True}
        assert_error(await http.delete(f"/api/webhooks/{hook['id']}", headers=admin.auth),
                     *NOT_FOUND)


async def test_bot_hook_gets_its_threads_and_mentions(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, mallory, bob = await register(http), await register(http), await register(http)
    bot_id = unique_id("bot")
    made = await http.post("/api/bots", headers=alice.auth, json={"user_id": bot_id,
                                                                  "name": "Helper"})
    assert made.status_code == 201, made.text
    bot = Account(bot_id, made.json()["data"]["token"], "", {})
    async with receiver() as got:
        assert_error(await http.post("/api/webhooks", headers=mallory.auth,
                                     json={"url": got.url, "bot_id": bot_id}), *FORBIDDEN)
        assert_error(await http.post("/api/webhooks", headers=alice.auth,
                                     json={"url": got.url, "bot_id": "nobot-x"}), *NOT_FOUND)
        hook = await add_hook(http, alice, got, bot_id=bot_id)
        with_bot = await create_group(http, alice, bob, bot)
        without = await create_group(http, alice, bob)
        await send(http, alice, without, "not for the bot")
        await send(http, alice, with_bot, "plain")
        await send(http, bot, with_bot, "the bot's own")
        await send(http, bob, with_bot, "hey bot", mentions=[bot_id])
        await got.wait_for(lambda: any(e["kind"] == "mention" for e in got.accepted))
        await send(http, alice, with_bot, "last")
        await got.wait_for(lambda: any(e["event"].get("body") == "last" for e in got.accepted))
        assert got.events(without) == []
        bodies = [(e["kind"], e["event"]["body"]) for e in got.accepted
                  if e["kind"] in ("message", "mention")]
        assert bodies == [("message", "plain"), ("mention", "hey bot"), ("message", "last")]
        assert all(e["hook_id"] == hook["id"] for e in got.accepted)
        listed = (await http.get("/api/webhooks", headers=alice.auth)).json()["data"]
        assert [h["bot_id"] for h in listed] == [bot_id]
        assert (await http.delete(f"/api/webhooks/{hook['id']}", headers=alice.auth)).is_success
