"""A restart keeps users, threads, messages, read state and the signing key."""

from __future__ import annotations

from pathlib import Path

import httpx

from mqim.serve import running_server
from tests.helpers import create_group, mqtt_session, next_event, register, send_command


async def test_restart_keeps_everything(tmp_path: Path) -> None:
    from tests.helpers import make_settings

    settings = make_settings(tmp_path)
    async with running_server(settings), httpx.AsyncClient(
        base_url=f"http://{settings.http}") as http:
        alice, bob = await register(http), await register(http)
        thread_id = await create_group(http, alice, bob)
        async with mqtt_session(settings, alice) as a:
            await a.subscribe(f"{settings.topic_prefix}/u/{alice.user_id}", qos=1)
            await a.publish(f"{settings.topic_prefix}/up/{alice.user_id}",
                            send_command(thread_id, "k1", "kept"), qos=1)
            await next_event(a, lambda t, e: e.get("type") == "ack")
        await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth, json={"seq": 2})

    async with running_server(settings), httpx.AsyncClient(
        base_url=f"http://{settings.http}") as http:
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
        # Numbering continues where it stopped, and the client id is deduplicated still.
        again = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                json={"client_msg_id": "k1", "body": "dup"})
        assert again.json()["data"]["seq"] == 2
        new = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                              json={"client_msg_id": "k2", "body": "next"})
        assert new.json()["data"]["seq"] == 3
