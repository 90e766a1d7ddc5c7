"""Who may connect, subscribe and publish: the denials, each beside the allowed case."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
import httpx
import pytest

from mqim.serve import RunningServer
from tests.helpers import (
    create_group,
    granted,
    mqtt_session,
    next_event,
    register,
    send_command,
)

DENIED = 0x80


async def test_non_member_cannot_subscribe_to_a_thread(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    topic = f"{server.settings.topic_prefix}/t/{thread_id}"
    async with mqtt_session(server.settings, bob) as b:
        assert granted(await b.subscribe(topic, qos=1)) == [1]
    async with mqtt_session(server.settings, mallory) as m:
        assert granted(await m.subscribe(topic, qos=1)) == [DENIED]
        prefix = server.settings.topic_prefix
        for other in (f"{prefix}/u/{alice.user_id}", f"{prefix}/up/{alice.user_id}",
                      f"{prefix}/t/+", f"{prefix}/#", "#", "$SYS/#"):
            assert granted(await m.subscribe(other, qos=1)) == [DENIED], other
        assert granted(await m.subscribe(f"{prefix}/u/{mallory.user_id}", qos=1)) == [1]


async def test_non_member_cannot_read_a_thread_over_http(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, mallory = await register(http), await register(http)
    thread_id = await create_group(http, alice)
    assert (await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)).is_success
    for path in (f"/api/threads/{thread_id}/messages", f"/api/threads/{thread_id}"):
        response = await http.get(path, headers=mallory.auth)
        assert response.status_code == 403
        assert response.json() == {"code": 3003, "msg": f"not a member of thread {thread_id}",
                                   "error": "not_a_member"}
    posted = await http.post(f"/api/threads/{thread_id}/messages", headers=mallory.auth,
                             json={"body": "intrusion"})
    assert posted.status_code == 403
    assert posted.json()["code"] == 3003


async def test_publish_on_someone_elses_uplink_is_refused_and_reported(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, mallory = await register(http), await register(http)
    thread_id = await create_group(http, alice, mallory)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, mallory) as m:
        await m.subscribe(f"{prefix}/u/{mallory.user_id}", qos=1)
        # Impersonating alice: refused by the broker, reported to mallory.
        await m.publish(f"{prefix}/up/{alice.user_id}",
                        send_command(thread_id, "spoof", "as alice"), qos=1)
        error = await next_event(m, lambda t, e: e.get("type") in ("error", "ack"))
        assert (error["type"], error["code"], error["error"]) == ("error", 1004, "forbidden")
        # Publishing events directly on the thread topic: refused too.
        await m.publish(f"{prefix}/t/{thread_id}", json.dumps({"type": "message"}), qos=1)
        error = await next_event(m, lambda t, e: e.get("type") in ("error", "ack"))
        assert error["code"] == 1004
        # Her own uplink works, with her as the sender whatever the payload claims.
        payload = json.loads(send_command(thread_id, "own", "as me"))
        await m.publish(f"{prefix}/up/{mallory.user_id}",
                        json.dumps({**payload, "sender_id": alice.user_id}), qos=1)
        ack = await next_event(m, lambda t, e: e.get("type") in ("error", "ack"))
        assert ack["type"] == "ack"
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)).json()
    messages = [e for e in history["data"] if e["type"] == "message"]
    assert [(e["sender_id"], e["body"]) for e in messages] == [(mallory.user_id, "as me")]


async def connect_refused(server: RunningServer, **kwargs: Any) -> bool:
    kwargs.setdefault("identifier", kwargs.get("username") or "anonymous")
    try:
        async with aiomqtt.Client(server.settings.mqtt.host, server.settings.mqtt.port,
                                  timeout=5, **kwargs):
            return False
    except aiomqtt.MqttError:
        return True


async def test_connect_needs_a_live_token_of_that_user(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    assert not await connect_refused(server, username=alice.user_id, password=alice.token)
    assert await connect_refused(server, username=alice.user_id, password="not-a-jwt")
    assert await connect_refused(server, username=bob.user_id, password=alice.token)
    assert await connect_refused(server)  # anonymous
    assert await connect_refused(server, username="mqim-bridge", password=alice.token)
    # Client ids live in the user's namespace: `{user}` or `{user}:...`, never someone else's.
    assert not await connect_refused(server, username=alice.user_id, password=alice.token,
                                     identifier=f"{alice.user_id}:laptop")
    for stolen in (bob.mqtt["client_id"], "mqim-bridge", f"{alice.user_id}-x", "random-id"):
        assert await connect_refused(server, username=alice.user_id, password=alice.token,
                                     identifier=stolen), stolen
    assert (await http.post("/api/auth/logout", headers=alice.auth)).is_success
    assert await connect_refused(server, username=alice.user_id, password=alice.token)


@pytest.mark.parametrize(
    ("will_topic", "retain", "refused"),
    [("own-uplink", False, False), ("other-uplink", False, True), ("thread", False, True),
     ("own-uplink", True, True)],
)
async def test_will_outside_own_uplink_refuses_the_connection(
    server: RunningServer, http: httpx.AsyncClient, will_topic: str, retain: bool, refused: bool
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    topic = {"own-uplink": f"{prefix}/up/{alice.user_id}",
             "other-uplink": f"{prefix}/up/{bob.user_id}",
             "thread": f"{prefix}/t/{thread_id}"}[will_topic]
    will = aiomqtt.Will(topic, b'{"op": "presence", "status": "offline"}', qos=1, retain=retain)
    assert await connect_refused(
        server, username=alice.user_id, password=alice.token, will=will
    ) is refused


async def test_expired_access_token_is_refused_everywhere(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    from models.tokens import issue_access_token

    alice = await register(http)
    session_id = alice.refresh_token.split(".", 1)[0]
    expired = issue_access_token(server.settings.jwt_secret, alice.user_id, session_id, ttl=-1)
    response = await http.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["code"] == 2002
    assert await connect_refused(server, username=alice.user_id, password=expired)

