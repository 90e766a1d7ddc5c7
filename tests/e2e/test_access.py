"""Who may connect, subscribe and publish: the denials, each beside the allowed case."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import httpx
import pytest

from tests.helpers import (
    barrier,
    connect_with_will_then_drop,
    create_group,
    granted,
    mqtt_session,
    next_event,
    register,
    send_command,
)
from tests.stacks import Stack

DENIED = 0x80


async def test_non_member_cannot_subscribe_to_a_thread(
    server: Stack, http: httpx.AsyncClient
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
    server: Stack, http: httpx.AsyncClient
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
    server: Stack, http: httpx.AsyncClient
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


async def connect_refused(server: Stack, **kwargs: Any) -> bool:
    kwargs.setdefault("identifier", kwargs.get("username") or "anonymous")
    try:
        async with aiomqtt.Client(server.settings.mqtt.host, server.settings.mqtt.port,
                                  timeout=5, **kwargs):
            return False
    except aiomqtt.MqttError:
        return True


async def test_connect_needs_a_live_token_of_that_user(
    server: Stack, http: httpx.AsyncClient
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


@pytest.mark.parametrize("target", ["other-uplink", "thread", "own-uplink-retained"])
async def test_will_outside_own_uplink_never_reaches_anyone(
    server: Stack, http: httpx.AsyncClient, target: str
) -> None:
    """amqtt sends wills without asking the ACL, so the embedded broker refuses such a CONNECT;
    Mosquitto checks a will like a publish when it is due and drops it. Either way: nothing."""
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    forged = json.loads(send_command(thread_id, "will-1", "forged by a will"))
    topic, retain = {
        "other-uplink": (f"{prefix}/up/{bob.user_id}", False),  # impersonate bob
        "thread": (f"{prefix}/t/{thread_id}", False),  # forge a thread event
        "own-uplink-retained": (f"{prefix}/up/{alice.user_id}", True),
    }[target]
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        will = json.dumps({**forged, "body": "forged by a will"}).encode()
        code = await connect_with_will_then_drop(server.settings, alice, topic, will,
                                                 retain=retain)
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(b, server.settings, bob, seen)
    if server.settings.embedded_broker:
        assert code == 5, code  # CONNACK "not authorised"
    assert not [e for _, e in seen if e.get("body") == "forged by a will"], seen
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=bob.auth)).json()
    assert [e for e in history["data"] if e["type"] != "event"] == []


async def test_expired_access_token_is_refused_everywhere(
    server: Stack, http: httpx.AsyncClient
) -> None:
    from models.tokens import issue_access_token

    alice = await register(http)
    session_id = alice.refresh_token.split(".", 1)[0]
    expired = issue_access_token(server.settings.jwt_secret, alice.user_id, session_id, ttl=-1)
    response = await http.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["code"] == 2002
    assert await connect_refused(server, username=alice.user_id, password=expired)



async def test_admin_rules_apply_to_the_broker_at_once(
    server: Stack, http: httpx.AsyncClient
) -> None:
    admin, device, monitor, other = [await register(http) for _ in range(4)]
    await server.cli("admin", "grant", admin.user_id)
    topic = f"devices/{device.user_id}/temp"
    async with mqtt_session(server.settings, monitor) as m:
        assert granted(await m.subscribe("devices/+/temp", qos=1)) == [DENIED]
        rule_ids = []
        for body in ({"topic": "devices/%u/#", "access": "write"},
                     {"topic": "devices/+/temp", "access": "read", "user_id": monitor.user_id}):
            response = await http.post("/api/admin/acl/rules", headers=admin.auth, json=body)
            assert response.status_code == 201, response.text
            rule_ids.append(response.json()["data"]["id"])
        assert granted(await m.subscribe("devices/+/temp", qos=1)) == [1]
        async with mqtt_session(server.settings, other) as o:
            await o.subscribe(f"{server.settings.topic_prefix}/u/{other.user_id}", qos=1)
            await o.publish(topic, b"spoofed", qos=1)  # another user's device topic
            error = await next_event(o, lambda t, e: e.get("type") == "error")
            assert error["code"] == 1004
        async with mqtt_session(server.settings, device) as d:
            await d.publish(topic, b"21.5", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(m.messages))
    assert (message.topic.value, message.payload) == (topic, b"21.5")
    for rule_id in rule_ids:  # the rule for everyone would show in other tests' ACL views
        deleted = await http.delete(f"/api/admin/acl/rules/{rule_id}", headers=admin.auth)
        assert deleted.is_success, deleted.text
