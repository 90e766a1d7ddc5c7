"""Push notifications over real HTTP on both stacks (docs/push.md), delivered by the stack's own
worker to real receivers in this process (tests/push/receivers.py): a web push endpoint that
decrypts with its subscription's keys and checks VAPID, a UnifiedPush endpoint and a Matrix
push gateway. Pushes come after MQIM_PUSH_COALESCE_MS (300 ms here); each test waits for them
with a deadline, and proves an absence by a later push to a member who does get one (the worker
finishes a burst's sends before it takes the next)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from actions.pushsend import check_endpoint, refused_origins
from contract.errors import InvalidParameterError
from tests.api.test_accounts import assert_error
from tests.api.test_history_state import send
from tests.helpers import (
    Account,
    create_group,
    make_settings,
    mqtt_session,
    next_event,
    register,
)
from tests.push.receivers import Receivers, b64url_decode, running_receivers
from tests.stacks import Stack, running_stack

TARGETS = "/api/me/push-targets"


async def add_target(http: httpx.AsyncClient, account: Account, kind: str, endpoint: str,
                     keys: dict[str, str] | None = None) -> dict[str, Any]:
    response = await http.post(TARGETS, headers=account.auth,
                               json={"kind": kind, "endpoint": endpoint, "keys": keys})
    assert response.status_code == 201, response.text
    target: dict[str, Any] = response.json()["data"]
    return target


async def targets_of(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await http.get(TARGETS, headers=account.auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def receivers_for(http: httpx.AsyncClient, receivers: Receivers) -> Receivers:
    response = await http.get("/api/push/vapid-public-key")
    assert response.status_code == 200, response.text
    receivers.vapid_public_key = response.json()["data"]["public_key"]
    return receivers


async def burst(http: httpx.AsyncClient, sender: Account, thread_id: str, n: int,
                **extra: Any) -> None:
    """n messages sent at once, so the thread is never quiet between them."""
    await asyncio.gather(*(send(http, sender, thread_id, f"message {i}", **extra)
                           for i in range(n)))


async def test_targets_are_the_callers_and_checked(server: Stack, http: httpx.AsyncClient,
                                                   ) -> None:
    alice, mallory = await register(http), await register(http)
    async with running_receivers() as receivers:
        endpoint, keys = receivers.webpush("a")
        web = await add_target(http, alice, "webpush", endpoint, keys)
        assert web["kind"] == "webpush"
        assert web["keys"] == {"p256dh": keys["p256dh"]}
        assert web["failures"] == 0
        assert web["last_success_at"] is None
        gateway = await add_target(http, alice, "gateway", receivers.gateway,
                                   {"app_id": "im.mqim", "pushkey": "tok-1"})
        up = await add_target(http, alice, "unifiedpush", receivers.unifiedpush("a"))
        listed = await targets_of(http, alice)
        assert [t["id"] for t in listed] == [web["id"], gateway["id"], up["id"]]
        assert {t["session_id"] for t in listed} == {web["session_id"]}
        # The same endpoint again renews the target rather than adding one.
        again = await add_target(http, alice, "unifiedpush", receivers.unifiedpush("a"))
        assert again["id"] == up["id"]
        assert len(await targets_of(http, alice)) == 3
        assert await targets_of(http, mallory) == []
        # Another's target is not found; one's own goes.
        url = f"{TARGETS}/{web['id']}"
        assert_error(await http.delete(url, headers=mallory.auth), 404, 1005, "not_found")
        assert_error(await http.delete(f"{TARGETS}/99999999999", headers=alice.auth),
                     404, 1005, "not_found")
        assert (await http.delete(url, headers=alice.auth)).status_code == 200
        assert [t["id"] for t in await targets_of(http, alice)] == [gateway["id"], up["id"]]
        assert (await http.get(TARGETS)).status_code == 401
        assert (await http.post(TARGETS, json={"kind": "unifiedpush",
                                               "endpoint": endpoint})).status_code == 401
        # Hostile bodies: 1001.
        other = receivers.unifiedpush("x")
        bad_keys: list[Any] = [None, {}, {"p256dh": keys["p256dh"]}, {**keys, "auth": "AAAA"},
                               {**keys, "p256dh": "not base64!"},
                               {**keys, "p256dh": keys["auth"]}, {**keys, "auth": 5}]
        bodies: list[Any] = [
            *({"kind": "webpush", "endpoint": other, "keys": k} for k in bad_keys),
            {"kind": "gateway", "endpoint": other, "keys": {"app_id": "a"}},
            {"kind": "gateway", "endpoint": other, "keys": {"app_id": "", "pushkey": "p"}},
            {"kind": "apns", "endpoint": other}, {"kind": "unifiedpush"},
            {"kind": "unifiedpush", "endpoint": "ftp://127.0.0.1/x"},
            {"kind": "unifiedpush", "endpoint": "javascript:alert(1)"},
            {"kind": "unifiedpush", "endpoint": "http://user:pw@127.0.0.1/x"},
            {"kind": "unifiedpush", "endpoint": "http:///nohost"},
            {"kind": "unifiedpush", "endpoint": other + "x" * 2048},
            {"kind": "unifiedpush", "endpoint": 5}, [], "push",
        ]
        for body in bodies:
            assert_error(await http.post(TARGETS, headers=alice.auth, json=body),
                         400, 1001, "invalid_parameter")
        # At most 10 per session.
        for i in range(8):
            await add_target(http, alice, "unifiedpush", receivers.unifiedpush(f"n{i}"))
        assert_error(await http.post(TARGETS, headers=alice.auth, json={
            "kind": "unifiedpush", "endpoint": receivers.unifiedpush("eleventh")}),
            400, 1001, "invalid_parameter")
    key = (await http.get("/api/push/vapid-public-key")).json()["data"]["public_key"]
    assert len(b64url_decode(key)) == 65
    assert "=" not in key


async def test_hostile_endpoints_are_refused_without_insecure(tmp_path: Path) -> None:
    for url in ["http://example.com/push", "https://127.0.0.1/p", "https://10.1.2.3/p",
                "https://192.168.0.1/p", "https://169.254.169.254/latest", "https://[::1]/p",
                "https://[::ffff:127.0.0.1]/p", "https://[fe80::1]/p", "https://0.0.0.0/p",
                "https://localhost/p", "https://100.64.0.1/p", "https://224.0.0.1/p",
                "ftp://8.8.8.8/p", "https://8.8.8.8:99999/p", "https://no-such-host.invalid/p",
                "https://8.8.8.8/" + "x" * 2048]:
        with pytest.raises(InvalidParameterError):
            await check_endpoint(url, allow_insecure=False)
    await check_endpoint("https://8.8.8.8/push/abc", allow_insecure=False)
    await check_endpoint("https://[2001:4860:4860::8888]/push", allow_insecure=False)
    await check_endpoint("http://127.0.0.1:8080/up", allow_insecure=True)
    # Checked again before each send, once per origin.
    urls = ["https://8.8.8.8/a", "https://127.0.0.1:8443/b", "https://127.0.0.1:8443/c"]
    strict = make_settings(tmp_path, reach_allow_insecure=False)
    assert list(await refused_origins(urls, strict)) == ["https://127.0.0.1:8443"]
    assert await refused_origins(urls, make_settings(tmp_path)) == {}


async def test_one_coalesced_push_per_burst_to_each_kind(server: Stack, http: httpx.AsyncClient,
                                                         ) -> None:
    alice, bob, carol, dave = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, alice, bob, carol, dave)
    async with running_receivers() as r:
        await receivers_for(http, r)
        endpoint, keys = r.webpush("bob")
        await add_target(http, bob, "webpush", endpoint, keys)
        await add_target(http, carol, "unifiedpush", r.unifiedpush("carol"))
        await add_target(http, dave, "gateway", r.gateway, {"app_id": "im.x", "pushkey": "dave"})
        await add_target(http, alice, "unifiedpush", r.unifiedpush("alice"))  # the sender's own
        await burst(http, alice, thread_id, 20)
        await r.wait_for(lambda: all(r.received[n] for n in ("bob", "carol", "dave")))
        _, last = await send(http, alice, thread_id, "one more")
        await r.wait_for(lambda: all(len(r.received[n]) == 2 for n in ("bob", "carol", "dave")))
        assert r.problems == []
        for name in ("bob", "carol"):
            first, second = r.received[name]
            assert first == {"type": "push", "thread_id": thread_id, "seq": last - 1,
                             "count": 20, "sender_id": alice.user_id, "mention": False}
            assert (second["seq"], second["count"]) == (last, 21)
        first_gw, second_gw = r.received["dave"]
        assert first_gw == {"event_id": f"{thread_id}:{last - 1}", "room_id": thread_id,
                            "sender": alice.user_id, "counts": {"unread": 20}, "prio": "high",
                            "devices": [{"app_id": "im.x", "pushkey": "dave"}]}
        assert second_gw["counts"] == {"unread": 21}
        assert r.received["alice"] == []  # never for one's own messages
        # Reading resets the count; the worker recorded each success on its target.
        read = await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth,
                               json={"seq": last})
        assert read.status_code == 200, read.text
        await send(http, alice, thread_id, "after reading")
        await r.wait_for(lambda: len(r.received["bob"]) == 3)
        assert r.received["bob"][2]["count"] == 1
        (target,) = await targets_of(http, bob)
        assert target["last_success_at"] is not None
        assert target["failures"] == 0


async def test_online_muted_and_not_delivered_members(server: Stack, http: httpx.AsyncClient,
                                                      ) -> None:
    owner, online, muted, later, hidden, canary = [await register(http) for _ in range(6)]
    thread_id = await create_group(http, owner, online, muted, later, hidden, canary)
    settings_url = f"/api/threads/{thread_id}/settings"
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for who, body in ((muted, {"recv_msg_opt": 1}), (later, {"muted_until": until}),
                      (hidden, {"recv_msg_opt": 2})):
        assert (await http.patch(settings_url, headers=who.auth, json=body)).status_code == 200
    async with running_receivers() as r:
        for who, name in ((online, "online"), (muted, "muted"), (later, "later"),
                          (hidden, "hidden"), (canary, "canary")):
            await add_target(http, who, "unifiedpush", r.unifiedpush(name))
        prefix = server.settings.topic_prefix
        async with mqtt_session(server.settings, online) as client:
            await client.subscribe(f"{prefix}/u/{online.user_id}", qos=1)
            await client.publish(f"{prefix}/up/{online.user_id}", json.dumps(
                {"op": "presence", "req": "p1", "status": "online"}), qos=1)
            await next_event(client, lambda t, e: e.get("req") == "p1")
            await burst(http, owner, thread_id, 3)
            await r.wait_for(lambda: len(r.received["canary"]) == 1)
            assert {n: len(v) for n, v in r.received.items() if v} == {"canary": 1}
            # A mention reaches the muted member it names, not the others.
            await send(http, owner, thread_id, "hey", mentions=[muted.user_id])
            await r.wait_for(lambda: len(r.received["canary"]) == 2)
            assert r.received["muted"][0]["mention"] is True
            assert r.received["muted"][0]["count"] == 4
            assert {n: len(v) for n, v in r.received.items() if v} == {"canary": 2, "muted": 1}
            # "@all" reaches every muted member; recv_msg_opt 2 and online members never.
            await send(http, owner, thread_id, "all of you", mentions=["@all"])
            await r.wait_for(lambda: len(r.received["canary"]) == 3)
            assert {n: len(v) for n, v in r.received.items() if v} == {
                "canary": 3, "muted": 2, "later": 1}
            assert r.received["later"][0]["mention"] is True


async def test_ended_sessions_and_gone_subscriptions(server: Stack, http: httpx.AsyncClient,
                                                     ) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob, carol)
    login = await http.post("/api/auth/login", json={
        "login": bob.user_id, "password": bob.password, "platform": "android"})
    assert login.status_code == 200, login.text
    phone = Account(bob.user_id, login.json()["data"]["token"], "", {})
    async with running_receivers() as r:
        await receivers_for(http, r)
        await add_target(http, bob, "unifiedpush", r.unifiedpush("bob-web"))
        endpoint, keys = r.webpush("bob-phone")
        phone_target = await add_target(http, phone, "webpush", endpoint, keys)
        await add_target(http, carol, "gateway", r.gateway, {"app_id": "a", "pushkey": "carol"})
        # bob logs out on the web: that session's target is gone with it.
        assert (await http.post("/api/auth/logout", headers=bob.auth)).status_code == 200
        assert [t["id"] for t in await targets_of(http, phone)] == [phone_target["id"]]
        r.status["bob-phone"] = 410  # and the phone's subscription has expired
        r.rejected.add("carol")  # and the gateway no longer knows carol's device
        await send(http, alice, thread_id, "hello")
        await r.wait_for(lambda: bool(r.received["bob-phone"] and r.received["carol"]))
        assert r.problems == []
        assert r.received["bob-web"] == []
        deadline = asyncio.get_running_loop().time() + 5
        while await targets_of(http, phone) or await targets_of(http, carol):
            assert asyncio.get_running_loop().time() < deadline, "gone targets were kept"
            await asyncio.sleep(0.05)


async def test_previews_when_the_operator_allows_them(tmp_path: Path) -> None:
    async with running_stack("embedded", tmp_path, push_previews=True) as stack, \
            httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=10) as http, \
            running_receivers() as r:
        await receivers_for(http, r)
        alice, bob = await register(http), await register(http)
        thread_id = await create_group(http, alice, bob)
        endpoint, keys = r.webpush("bob")
        await add_target(http, bob, "webpush", endpoint, keys)
        await send(http, alice, thread_id, "first")
        await r.wait_for(lambda: len(r.received["bob"]) == 1)
        await send(http, alice, thread_id, "é" * 150)
        await r.wait_for(lambda: len(r.received["bob"]) == 2)
        assert r.problems == []
        assert [p["preview"] for p in r.received["bob"]] == ["first", "é" * 100]
        # The VAPID key was made on first use, in the data directory.
        assert (tmp_path / "vapid_private.pem").read_bytes().startswith(b"-----BEGIN")
