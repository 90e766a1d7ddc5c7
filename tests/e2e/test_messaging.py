"""The core path with real MQTT clients against the real embedded broker and bridge."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.helpers import (
    barrier,
    create_group,
    mqtt_session,
    next_event,
    register,
    send_command,
)
from tests.stacks import Stack


def is_ack(req: str) -> Any:
    return lambda topic, event: event.get("type") == "ack" and event.get("req") == req


async def test_uplink_message_is_acked_and_reaches_other_member(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await a.publish(f"{prefix}/up/{alice.user_id}", send_command(thread_id, "c1", "hello bob"),
                        qos=1)
        ack = await next_event(a, is_ack("c1"))
        delivered = await next_event(b, lambda t, e: e.get("type") == "message")
    assert ack["data"]["seq"] == 2  # seq 1 is the group's creation event
    assert delivered["seq"] == ack["data"]["seq"]
    assert delivered["message_id"] == ack["data"]["message_id"]
    assert delivered["sender_id"] == alice.user_id
    assert delivered["body"] == "hello bob"
    assert delivered["thread_id"] == thread_id


async def test_300_fast_messages_are_gapless_in_order_and_stored_once(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix, count = server.settings.topic_prefix, 300
    async with mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await asyncio.gather(*(
            a.publish(f"{prefix}/up/{alice.user_id}", send_command(thread_id, f"m{i}", f"n{i}"),
                      qos=1)
            for i in range(count)
        ))
        acks: dict[str, int] = {}
        while len(acks) < count:
            event = await next_event(a, lambda t, e: e.get("type") in ("ack", "error"), timeout=30)
            assert event["type"] == "ack", event
            acks[event["req"]] = event["data"]["seq"]
        received = [
            await next_event(b, lambda t, e: e.get("type") == "message", timeout=30)
            for _ in range(count)
        ]
    assert [acks[f"m{i}"] for i in range(count)] == list(range(2, count + 2))
    assert [e["seq"] for e in received] == list(range(2, count + 2))
    assert [e["body"] for e in received] == [f"n{i}" for i in range(count)]
    stored: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await http.get(f"/api/threads/{thread_id}/messages",
                               params={"after_seq": after, "limit": 200}, headers=alice.auth))
        entries = page.json()["data"]
        if not entries:
            break
        stored += entries
        after = entries[-1]["seq"]
    assert [e["seq"] for e in stored] == list(range(1, count + 2))
    assert [e["body"] for e in stored[1:]] == [f"n{i}" for i in range(count)]


async def test_retry_with_same_client_msg_id_returns_first_seq(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        uplink = f"{prefix}/up/{alice.user_id}"
        await a.publish(uplink, send_command(thread_id, "same", "first", req="r1"), qos=1)
        first = await next_event(a, is_ack("r1"))
        await a.publish(uplink, send_command(thread_id, "same", "retry", req="r2"), qos=1)
        retry = await next_event(a, is_ack("r2"))
    assert retry["data"]["seq"] == first["data"]["seq"]
    assert retry["data"]["message_id"] == first["data"]["message_id"]
    assert retry["data"]["duplicate"] is True
    assert first["data"]["duplicate"] is False
    # Over HTTP too, with the same id: same answer, nothing new stored.
    again = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                            json={"client_msg_id": "same", "body": "third"})
    assert again.json()["data"]["seq"] == first["data"]["seq"]
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)).json()
    assert [e["body"] for e in history["data"] if e["type"] == "message"] == ["first"]


async def test_http_send_publishes_the_same_event_on_mqtt(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        response = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                   json={"client_msg_id": "h1", "body": "over http"})
        assert response.status_code == 201
        event = await next_event(b, lambda t, e: e.get("type") == "message")
    ack = response.json()["data"]
    assert event["seq"] == ack["seq"]
    assert event["message_id"] == ack["message_id"]
    assert event["body"] == "over http"


async def test_bad_input_gets_error_events_and_server_stays_up(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    other_thread = await create_group(http, carol)
    prefix = server.settings.topic_prefix
    big = json.dumps({"op": "send", "req": "big", "thread_id": thread_id, "client_msg_id": "b",
                      "body": "x" * (server.settings.max_payload_bytes + 1)})
    cases: list[tuple[bytes | str, int, str | None]] = [
        (b"\xff\xfe not json", 1001, None),
        ("[1, 2]", 1001, None),
        (json.dumps({"op": "fly", "req": "unknown"}), 1001, "unknown"),
        (json.dumps({"op": "send", "req": "types", "thread_id": 5, "client_msg_id": "t"}),
         1001, "types"),
        (big, 1012, "big"),  # too large, but its req is still found
        (json.dumps({"op": "send", "req": "empty", "thread_id": thread_id, "client_msg_id": "e",
                     "body": "   "}), 4003, "empty"),
        (send_command("tnope", "nope", "x", req="nothread"), 3001, "nothread"),
        (send_command(other_thread, "nm", "x", req="notmember"), 3003, "notmember"),
        (json.dumps({"op": "read", "req": "neg", "thread_id": thread_id, "seq": -1}), 1001, "neg"),
        (json.dumps({"op": "react", "req": "later"}), 1001, "later"),
    ]
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        for payload, code, req in cases:
            await a.publish(f"{prefix}/up/{alice.user_id}", payload, qos=1)
            error = await next_event(a, lambda t, e: e.get("type") in ("error", "ack"))
            assert error["type"] == "error", (payload, error)
            assert (error["code"], error["req"]) == (code, req), (payload, error)
            assert error["msg"]
        # Still up, and nothing was stored by any of the bad commands.
        await a.publish(f"{prefix}/up/{alice.user_id}", send_command(thread_id, "ok", "fine"),
                        qos=1)
        ack = await next_event(a, is_ack("ok"))
    assert ack["data"]["seq"] == 2
    assert (await http.get("/health")).status_code == 200


async def test_typing_and_read_reach_the_thread(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                           json={"client_msg_id": "r1", "body": "read me"})
    seq = sent.json()["data"]["seq"]
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    # Members of a new group start reading at its first entry (the group's creation).
    assert {"thread_id": thread_id, "max_seq": seq, "read_seq": 1, "unread": 1} in sync
    async with mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b:
        await a.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        uplink = f"{prefix}/up/{bob.user_id}"
        await b.publish(uplink, json.dumps({"op": "typing", "thread_id": thread_id}), qos=1)
        typing = await next_event(a, lambda t, e: e.get("type") == "typ")
        await b.publish(uplink, json.dumps({"op": "read", "req": "rd", "thread_id": thread_id,
                                            "seq": seq}), qos=1)
        receipt = await next_event(a, lambda t, e: e.get("type") == "read_receipt")
        own_sync = await next_event(b, lambda t, e: e.get("type") == "read")
        ack = await next_event(b, is_ack("rd"))
    assert typing == {"type": "typ", "thread_id": thread_id, "from": bob.user_id,
                      "is_typing": True}
    assert (receipt["reader"], receipt["seq"]) == (bob.user_id, seq)
    assert own_sync["seq"] == seq
    assert ack["data"]["read_seq"] == seq
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    assert {"thread_id": thread_id, "max_seq": seq, "read_seq": seq, "unread": 0} in sync


async def test_removed_member_stops_receiving_at_once(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob, carol)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as b, mqtt_session(server.settings, carol) as c:
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await c.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                        json={"client_msg_id": "before", "body": "before"})
        assert (await next_event(b, lambda t, e: e.get("body") == "before"))["seq"] == 2
        removed = await http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}",
                                    headers=alice.auth)
        assert removed.status_code == 200, removed.text
        notice = await next_event(b, lambda t, e: e.get("type") == "thread_removed")
        assert notice["thread_id"] == thread_id
        await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                        json={"client_msg_id": "after", "body": "after"})
        assert (await next_event(c, lambda t, e: e.get("body") == "after"))["seq"] == 4
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(b, server.settings, bob, seen)
    assert not [e for t, e in seen if t.endswith(f"/t/{thread_id}")], seen
    # A former member reads up to their leaving (the log:unsubscribe, seq 3), nothing after.
    history = await http.get(f"/api/threads/{thread_id}/messages", headers=bob.auth)
    assert [e["seq"] for e in history.json()["data"]] == [1, 2, 3]
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=bob.auth,
                           json={"client_msg_id": "gone", "body": "let me back"})
    assert (sent.status_code, sent.json()["code"]) == (403, 3003)


async def test_websocket_client_sends_and_receives(
    server: Stack, http: httpx.AsyncClient
) -> None:
    import aiomqtt

    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    ws = server.settings.mqtt_ws
    assert ws is not None
    prefix = server.settings.topic_prefix
    async with aiomqtt.Client(
        ws.host, ws.port, transport="websockets", username=bob.user_id,
        password=bob.token, identifier=bob.mqtt["client_id"],
    ) as b:
        await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await b.publish(f"{prefix}/up/{bob.user_id}", send_command(thread_id, "w1", "via ws"),
                        qos=1)
        message = await next_event(b, lambda t, e: e.get("type") == "message")
        ack = await next_event(b, is_ack("w1"))
    assert message["body"] == "via ws"
    assert message["seq"] == ack["data"]["seq"] == 2


async def test_concurrent_writers_keep_every_thread_gapless(
    server: Stack, http: httpx.AsyncClient
) -> None:
    """HTTP sends (concurrent transactions) and MQTT sends (bridge batches) into the same
    threads at once: every thread's seqs stay 1..n with nothing lost or doubled."""
    users = [await register(http) for _ in range(3)]
    threads = [await create_group(http, users[0], *users[1:]) for _ in range(2)]
    prefix = server.settings.topic_prefix

    async def over_http(user_index: int, i: int) -> None:
        user = users[user_index]
        response = await http.post(
            f"/api/threads/{threads[i % 2]}/messages", headers=user.auth,
            json={"client_msg_id": f"h{user_index}-{i}", "body": f"h{user_index}-{i}"})
        assert response.status_code == 201, response.text

    async with mqtt_session(server.settings, users[0]) as a:
        await a.subscribe(f"{prefix}/u/{users[0].user_id}", qos=1)
        publishes = [
            a.publish(f"{prefix}/up/{users[0].user_id}",
                      send_command(threads[i % 2], f"q{i}", f"q{i}"), qos=1)
            for i in range(60)
        ]
        await asyncio.gather(*publishes, *(over_http(u, i) for u in (1, 2) for i in range(30)))
        acks = 0
        while acks < 60:
            event = await next_event(a, lambda t, e: e.get("type") in ("ack", "error"),
                                     timeout=30)
            assert event["type"] == "ack", event
            acks += 1
    for thread_id in threads:
        page = await http.get(f"/api/threads/{thread_id}/messages",
                              params={"limit": 200}, headers=users[0].auth)
        entries = page.json()["data"]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        assert len(entries) == 1 + 60  # creation event + 30 MQTT + 2 x 15 HTTP
        bodies = [e["body"] for e in entries[1:]]
        assert len(set(bodies)) == len(bodies)
