"""A restart keeps users, threads, messages, read state, sessions and the signing key.

In the mosquitto mode, Mosquitto restarts too: its plugin comes back empty and denies until the
bridge re-syncs it from the database, which the member's subscription below proves.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from config import Settings
from tests.helpers import (
    create_group,
    granted,
    make_settings,
    mqtt_session,
    next_event,
    register,
    send_command,
)
from tests.stacks import external_broker_settings, mosquitto_for, postgres_database, serve_process


@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_restart_keeps_everything(tmp_path: Path, mode: str) -> None:
    base = make_settings(tmp_path)
    async with AsyncExitStack() as outer:
        db_url = await outer.enter_async_context(postgres_database()) if mode != "embedded" else ""

        async def start(run: AsyncExitStack) -> Settings:
            settings = base
            if mode != "embedded":
                port, ws = await run.enter_async_context(mosquitto_for(base, tmp_path))
                settings = external_broker_settings(base, port, ws, database_url=db_url)
            await run.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
            return settings

        async with AsyncExitStack() as run:
            settings = await start(run)
            http = await run.enter_async_context(
                httpx.AsyncClient(base_url=f"http://{settings.http}"))
            alice, bob = await register(http), await register(http)
            thread_id = await create_group(http, alice, bob)
            async with mqtt_session(settings, alice) as a:
                await a.subscribe(f"{settings.topic_prefix}/u/{alice.user_id}", qos=1)
                await a.publish(f"{settings.topic_prefix}/up/{alice.user_id}",
                                send_command(thread_id, "k1", "kept"), qos=1)
                await next_event(a, lambda t, e: e.get("type") == "ack")
            await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth, json={"seq": 2})

        async with AsyncExitStack() as run:
            settings = await start(run)
            http = await run.enter_async_context(
                httpx.AsyncClient(base_url=f"http://{settings.http}"))
            # The old access token still verifies: the secret and the session survived.
            me = await http.get("/api/me", headers=alice.auth)
            assert me.json()["data"]["id"] == alice.user_id
            login = await http.post("/api/auth/login", json={
                "login": bob.user_id, "password": bob.password, "platform": "ios"})
            assert login.status_code == 200
            history = await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)
            assert [(e["seq"], e.get("body")) for e in history.json()["data"]] == [
                (1, None), (2, "kept")]
            sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
            assert sync == [{"thread_id": thread_id, "max_seq": 2, "read_seq": 2, "unread": 0}]
            # Membership still grants the thread topic on the (restarted) broker.
            async with mqtt_session(settings, alice) as a:
                result = await a.subscribe(f"{settings.topic_prefix}/t/{thread_id}", qos=1)
                assert granted(result) == [1]
                # Numbering continues where it stopped; the client id is still deduplicated.
                again = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                        json={"client_msg_id": "k1", "body": "dup"})
                assert again.json()["data"]["seq"] == 2
                new = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                      json={"client_msg_id": "k2", "body": "next"})
                assert new.json()["data"]["seq"] == 3
                # The republished duplicate (seq 2), then the new message (seq 3).
                event = await next_event(a, lambda t, e: e.get("seq") == 3)
            assert event["body"] == "next"


async def test_mosquitto_restart_under_a_running_server(tmp_path: Path) -> None:
    """The broker restarts, mqim does not: the bridge re-syncs the empty plugin, and the API's
    control connection comes back for the next change (a new member can subscribe)."""
    import asyncio

    import aiomqtt

    base = make_settings(tmp_path)
    async with AsyncExitStack() as outer:
        db_url = await outer.enter_async_context(postgres_database())
        broker = AsyncExitStack()
        ports = await broker.enter_async_context(mosquitto_for(base, tmp_path))
        settings = external_broker_settings(base, *ports, database_url=db_url)
        await outer.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
        http = await outer.enter_async_context(
            httpx.AsyncClient(base_url=f"http://{settings.http}"))
        alice, bob = await register(http), await register(http)
        thread_id = await create_group(http, alice)
        await broker.aclose()  # Mosquitto goes down ...
        outer.push_async_callback(broker.aclose)
        _ = await broker.enter_async_context(mosquitto_for(base, tmp_path, ports))  # ... and back
        async with asyncio.timeout(30):
            while True:  # logins are turned away until the bridge has re-synced the plugin
                try:
                    async with mqtt_session(settings, alice, timeout=2):
                        break
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.2)  # polling for readiness, not synchronising
        # Only now, after the re-sync, the change: it must travel over the API's connection.
        added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                                json={"user_ids": [bob.user_id]})
        assert added.status_code == 200, added.text
        async with mqtt_session(settings, bob) as b:
            result = await b.subscribe(f"{settings.topic_prefix}/t/{thread_id}", qos=1)
        assert granted(result) == [1]
