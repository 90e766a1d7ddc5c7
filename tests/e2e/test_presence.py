"""Presence: from the MQTT connection itself (the `presence` op, and the will for a killed
client), to co-members on the thread topics and friends on their own topic; never retained,
and invisible to strangers."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import (
    barrier,
    connect_with_will_then_drop,
    create_group,
    mqtt_session,
    next_event,
    register,
)
from tests.stacks import Stack


def is_presence(user_id: str, status: str) -> Any:
    return lambda t, e: (e.get("type"), e.get("user_id"), e.get("status")) == (
        "presence", user_id, status)


async def test_presence_reaches_co_members_not_strangers(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    online = json.dumps({"op": "presence", "req": "p1", "status": "online"})
    async with mqtt_session(server.settings, bob) as b, \
            mqtt_session(server.settings, mallory) as m:
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await m.subscribe(f"{prefix}/u/{mallory.user_id}", qos=1)
        async with mqtt_session(server.settings, alice) as a:
            await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
            await a.publish(f"{prefix}/up/{alice.user_id}", online, qos=1)
            ack = await next_event(a, lambda t, e: e.get("req") == "p1")
            assert ack["data"] == {"status": "online"}
        event = await next_event(b, is_presence(alice.user_id, "online"))
        assert isinstance(event["last_seen_at"], int)
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(m, server.settings, mallory, seen)
        assert not [e for _, e in seen if e.get("type") == "presence"]
    shown = await http.get(f"/api/users/{alice.user_id}/presence", headers=bob.auth)
    assert shown.json()["data"]["status"] == "online"
    assert_error(await http.get(f"/api/users/{alice.user_id}/presence", headers=mallory.auth),
                 403, 1004, "forbidden")
    assert_error(await http.get("/api/users/nobody-x/presence", headers=bob.auth),
                 404, 2006, "user_not_found")


async def test_killed_client_goes_offline_through_its_will(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        async with mqtt_session(server.settings, alice) as a:
            await a.publish(f"{prefix}/up/{alice.user_id}",
                            json.dumps({"op": "presence", "status": "online"}), qos=1)
        await next_event(b, is_presence(alice.user_id, "online"))
        # Alice's device dies without a DISCONNECT: the broker sends its will.
        code = await connect_with_will_then_drop(
            server.settings, alice, f"{prefix}/up/{alice.user_id}",
            json.dumps({"op": "presence", "status": "offline"}).encode())
        assert code == 0
        offline = await next_event(b, is_presence(alice.user_id, "offline"))
    assert offline["last_seen_at"] is not None
    shown = await http.get(f"/api/users/{alice.user_id}/presence", headers=bob.auth)
    assert shown.json()["data"]["status"] == "offline"


async def test_logout_closes_the_live_mqtt_connection(
    server: Stack, http: httpx.AsyncClient
) -> None:
    import asyncio

    import aiomqtt
    import pytest

    alice, bob = await register(http), await register(http)
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        async with mqtt_session(server.settings, alice) as a:
            await a.subscribe(f"{server.settings.topic_prefix}/u/{alice.user_id}", qos=1)
            assert (await http.post("/api/auth/logout", headers=alice.auth)).is_success
            with pytest.raises(aiomqtt.MqttError):  # noqa: PT012  # the stream ends with it
                async with asyncio.timeout(10):
                    async for _ in a.messages:
                        pass
        # Other users' connections are untouched.
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(b, server.settings, bob, seen)
