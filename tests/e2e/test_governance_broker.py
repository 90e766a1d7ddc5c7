"""What thread governance changes at the broker and on the send path, with real MQTT clients on
both stacks: a member with recv_msg_opt 2 receives nothing, a muted member's sends get 3010, a
former member cannot subscribe and reads only up to their leaving, a dissolved thread takes no
sends, `admins_only_send` refuses members, and a member added later reads from their join."""

from __future__ import annotations

import json
from typing import Any

import aiomqtt
import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import (
    Account,
    barrier,
    create_group,
    granted,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
    whole_timeline,
)
from tests.stacks import Stack

DENIED = 0x80


async def post_message(http: httpx.AsyncClient, sender: Account, thread_id: str,
                       body: str) -> httpx.Response:
    return await http.post(f"/api/threads/{thread_id}/messages", headers=sender.auth,
                           json={"client_msg_id": unique_id("c"), "body": body})


async def send_over_mqtt(client: aiomqtt.Client, stack: Stack, sender: Account, thread_id: str,
                         body: str, seen: list[tuple[str, dict[str, Any]]] | None = None,
                         ) -> dict[str, Any]:
    """Send with a `req` and return the answer (`ack` or `error`) carrying it; what arrives
    before it lands in `seen`."""
    req = unique_id("r")
    await client.publish(f"{stack.settings.topic_prefix}/up/{sender.user_id}",
                         send_command(thread_id, unique_id("c"), body, req=req), qos=1)
    return await next_event(client, lambda t, e: e.get("req") == req, seen=seen)


def bodies(seen: list[tuple[str, dict[str, Any]]], topic: str) -> list[str]:
    return [e["body"] for t, e in seen if t == topic and e.get("type") == "message"]


async def test_recv_msg_opt_2_stops_delivery_at_once_and_back(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    topic = f"{server.settings.topic_prefix}/t/{thread_id}"
    settings = f"/api/threads/{thread_id}/settings"
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        assert granted(await b.subscribe(topic, qos=1)) == [1]
        assert (await post_message(http, alice, thread_id, "before")).status_code == 201
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(b, server.settings, bob, seen)
        assert bodies(seen, topic) == ["before"]

        answer = await http.patch(settings, headers=bob.auth, json={"recv_msg_opt": 2})
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["recv_msg_opt"] == 2
        # The live subscription stops delivering: nothing more arrives on the thread topic.
        assert (await post_message(http, alice, thread_id, "while off")).status_code == 201
        seen = []
        await barrier(b, server.settings, bob, seen)
        assert bodies(seen, topic) == []
        assert granted(await b.subscribe(topic, qos=1)) == [DENIED]

        assert (await http.patch(settings, headers=bob.auth,
                                 json={"recv_msg_opt": 0})).status_code == 200
        assert granted(await b.subscribe(topic, qos=1)) == [1]
        assert (await post_message(http, alice, thread_id, "after")).status_code == 201
        seen = []
        await barrier(b, server.settings, bob, seen)
        assert bodies(seen, topic) == ["after"]
    # History stayed readable all along, the undelivered message included.
    entries = await whole_timeline(http, bob, thread_id)
    assert [e.get("body") for e in entries if e["type"] == "message"] == [
        "before", "while off", "after"]


async def test_former_member_cannot_subscribe_and_reads_up_to_leaving(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob, carol)
    topic = f"{server.settings.topic_prefix}/t/{thread_id}"
    assert (await post_message(http, alice, thread_id, "carol sees this")).status_code == 201
    async with mqtt_session(server.settings, carol) as c:
        await c.subscribe(f"{server.settings.topic_prefix}/u/{carol.user_id}", qos=1)
        assert granted(await c.subscribe(topic, qos=1)) == [1]
        removed = await http.delete(f"/api/threads/{thread_id}/members/{carol.user_id}",
                                    headers=alice.auth)
        assert removed.status_code == 200, removed.text
        leave_seq = removed.json()["data"]["seq"]
        assert (await post_message(http, alice, thread_id, "after carol")).status_code == 201
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(c, server.settings, carol, seen)
        assert bodies(seen, topic) == []
        assert granted(await c.subscribe(topic, qos=1)) == [DENIED]
        # Her sends are refused over MQTT too.
        answer = await send_over_mqtt(c, server, carol, thread_id, "still here?")
        assert (answer["type"], answer["code"]) == ("error", 3003)
    history = await http.get(f"/api/threads/{thread_id}/messages", headers=carol.auth)
    assert history.status_code == 200, history.text
    seqs = [e["seq"] for e in history.json()["data"]]
    assert seqs == list(range(1, leave_seq + 1))
    assert "after carol" not in [e.get("body") for e in history.json()["data"]]
    assert_error(await http.get(f"/api/threads/{thread_id}/messages", headers=(
        await register(http)).auth), 403, 3003, "not_a_member")


async def test_muted_member_gets_3010_over_mqtt_until_unmuted(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    muted = await http.post(f"/api/threads/{thread_id}/mutes", headers=owner.auth,
                            json={"user_ids": [bob.user_id]})
    assert muted.status_code == 200, muted.text
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        answer = await send_over_mqtt(b, server, bob, thread_id, "let me speak")
        assert (answer["type"], answer["code"], answer["error"]) == (
            "error", 3010, "muted_in_thread")
        assert answer["msg"] == f"muted in thread {thread_id} until unmuted"
        assert_error(await post_message(http, bob, thread_id, "over http"),
                     403, 3010, "muted_in_thread")
        assert (await http.delete(f"/api/threads/{thread_id}/mutes/{bob.user_id}",
                                  headers=owner.auth)).status_code == 200
        answer = await send_over_mqtt(b, server, bob, thread_id, "thanks")
        assert answer["type"] == "ack"
    entries = await whole_timeline(http, owner, thread_id)
    assert [e.get("body") for e in entries if e["type"] == "message"] == ["thanks"]


async def test_dissolved_thread_takes_no_sends_and_no_subscribers(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    topic = f"{server.settings.topic_prefix}/t/{thread_id}"
    assert (await post_message(http, bob, thread_id, "last words")).status_code == 201
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        assert granted(await b.subscribe(topic, qos=1)) == [1]
        assert (await http.delete(f"/api/threads/{thread_id}",
                                  headers=owner.auth)).status_code == 200
        removed = await next_event(b, lambda t, e: e.get("type") == "thread_removed")
        assert (removed["thread_id"], removed["reason"]) == (thread_id, "dissolved")
        answer = await send_over_mqtt(b, server, bob, thread_id, "hello?")
        assert (answer["type"], answer["code"], answer["error"]) == (
            "error", 3002, "thread_dissolved")
        assert granted(await b.subscribe(topic, qos=1)) == [DENIED]
    assert_error(await post_message(http, owner, thread_id, "me neither"),
                 403, 3002, "thread_dissolved")
    # The history stays readable to its members.
    entries = await whole_timeline(http, bob, thread_id)
    assert entries[-1]["logMessageType"] == "log:thread-dissolved"


async def test_admins_only_send_refuses_members(server: Stack, http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    changed = await http.patch(f"/api/threads/{thread_id}", headers=owner.auth,
                               json={"settings": {"admins_only_send": True}})
    assert changed.status_code == 200, changed.text
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        answer = await send_over_mqtt(b, server, bob, thread_id, "may I?")
        assert (answer["type"], answer["code"]) == ("error", 3007)
    assert (await post_message(http, owner, thread_id, "announcement")).status_code == 201


async def test_member_added_later_reads_from_their_join(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    assert (await post_message(http, owner, thread_id, "before carol")).status_code == 201
    added = await http.post(f"/api/threads/{thread_id}/members", headers=owner.auth,
                            json={"user_ids": [carol.user_id]})
    join_seq = added.json()["data"]["seq"]
    assert (await post_message(http, owner, thread_id, "welcome")).status_code == 201
    page = (await http.get(f"/api/threads/{thread_id}/messages", headers=carol.auth)).json()
    assert [e["seq"] for e in page["data"]] == [join_seq, join_seq + 1]
    assert page["data"][0]["logMessageType"] == "log:subscribe"
    # Asking for earlier seqs explicitly gives nothing more.
    early = await http.get(f"/api/threads/{thread_id}/messages", headers=carol.auth,
                           params={"after_seq": 0, "limit": 10})
    assert [e["seq"] for e in early.json()["data"]] == [join_seq, join_seq + 1]
    # With `shared` visibility the whole timeline is hers.
    assert (await http.patch(f"/api/threads/{thread_id}", headers=owner.auth, json={
        "settings": {"history_visibility": "shared"}})).status_code == 200
    entries = await whole_timeline(http, carol, thread_id)
    assert "before carol" in [e.get("body") for e in entries]
    # A member who leaves and rejoins reads from their latest join.
    assert (await http.patch(f"/api/threads/{thread_id}", headers=owner.auth, json={
        "settings": {"history_visibility": "joined"}})).status_code == 200
    assert (await http.delete(f"/api/threads/{thread_id}/members/{carol.user_id}",
                              headers=carol.auth)).status_code == 200
    rejoined = await http.post(f"/api/threads/{thread_id}/members", headers=owner.auth,
                               json={"user_ids": [carol.user_id]})
    rejoin_seq = rejoined.json()["data"]["seq"]
    page = (await http.get(f"/api/threads/{thread_id}/messages", headers=carol.auth)).json()
    assert [e["seq"] for e in page["data"]] == [rejoin_seq]


async def test_sending_to_a_room_joins_it_and_a_full_room_refuses(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, bob, carol = await register(http), await register(http), await register(http)
    created = await http.post("/api/threads", headers=owner.auth, json={
        "type": "room", "name": "lobby", "capacity": 2})
    assert created.status_code == 201, created.text
    room_id = created.json()["data"]["thread_id"]
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/u/{bob.user_id}", qos=1)
        seen: list[tuple[str, dict[str, Any]]] = []
        answer = await send_over_mqtt(b, server, bob, room_id, "hi all", seen)
        assert answer["type"] == "ack", answer
        # Joining is announced before the send is answered, so a device subscribes in time.
        assert [e["thread_id"] for _, e in seen if e.get("type") == "thread_added"] == [room_id]
    async with mqtt_session(server.settings, carol) as c:
        await c.subscribe(f"{server.settings.topic_prefix}/u/{carol.user_id}", qos=1)
        answer = await send_over_mqtt(c, server, carol, room_id, "room for me?")
        assert (answer["type"], answer["code"], answer["error"]) == ("error", 3011, "room_full")
    assert_error(await post_message(http, carol, room_id, "over http"), 409, 3011, "room_full")
    entries = await whole_timeline(http, owner, room_id)
    assert [(e["type"], e.get("body") or e.get("logMessageType")) for e in entries][-2:] == [
        ("event", "log:subscribe"), ("message", "hi all")]
    assert json.dumps(entries).count("room for me?") == 0
