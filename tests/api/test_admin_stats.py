"""GET /api/admin/stats on both stacks: admins only, and figures that follow what happens
(registrations, threads, messages, presence, connections), matching the gauges on /metrics."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_admin import make_admin
from tests.api.test_observability import scrape, value
from tests.helpers import Account, barrier, create_group, mqtt_session, register, unique_id
from tests.stacks import Stack

FIGURES = {"connections", "online_users", "users", "threads", "messages",
           "messages_last_minute", "uptime_s"}


async def stats(http: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    response = await http.get("/api/admin/stats", headers=admin.auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    assert set(data) == FIGURES
    return data


async def test_only_admins_see_stats(server: Stack, http: httpx.AsyncClient) -> None:
    user = await register(http)
    assert_error(await http.get("/api/admin/stats", headers=user.auth), 403, 1004, "forbidden")
    assert_error(await http.get("/api/admin/stats"), 401, 2001, "token_invalid")


async def test_figures_follow_the_server(server: Stack, http: httpx.AsyncClient) -> None:
    admin = await make_admin(server, http)
    before = await stats(http, admin)
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    for n in range(3):
        sent = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                               json={"type": "text", "body": f"m{n}",
                                     "client_msg_id": unique_id()})
        assert sent.status_code == 201
    # A retry of the last one is not a new message.
    retry = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                            json={"type": "text", "body": "again", "client_msg_id": "same"})
    again = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                            json={"type": "text", "body": "again", "client_msg_id": "same"})
    assert (retry.status_code, again.status_code) == (201, 200)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as client:
        await client.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await client.publish(f"{prefix}/up/{bob.user_id}",
                             json.dumps({"op": "presence", "status": "online"}), qos=1)
        await barrier(client, server.settings, bob, [])
        during = await stats(http, admin)
        page = await scrape(http)
    after = await stats(http, admin)

    assert during["users"] - before["users"] == 2  # alice and bob (the admin came before)
    assert during["threads"] - before["threads"] == 1
    assert during["messages"] - before["messages"] == 4
    assert during["messages_last_minute"] >= 4
    assert during["online_users"] - before["online_users"] == 1
    assert during["uptime_s"] >= before["uptime_s"] >= 0
    if server.settings.embedded_broker:
        # bob's connection, counted by the broker in this process; gone once he left.
        assert during["connections"] == before["connections"] + 1
        assert value(page, "mqim_mqtt_connected_clients") == during["connections"]
    else:
        # Mosquitto's connections are not counted by mqim.
        assert during["connections"] is None
    for name in FIGURES - {"connections", "uptime_s"}:
        assert value(page, f"mqim_stats_{name}") == during[name], name
    assert after["users"] == during["users"]
