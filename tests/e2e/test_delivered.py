"""The `delivered` op end to end on both stacks: its ack, its `delivery_receipt` on the thread
topic once per move (never back, capped at the last seq), its refusals with the command's
`req`, and a `read` op that moves the delivered mark too, as the receipts route then shows."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_receipts import positions, post_message, receipt_sets
from tests.helpers import Predicate, create_group, mqtt_session, next_event, register
from tests.stacks import Stack


def delivered(thread_id: str, seq: Any, req: str) -> str:
    return json.dumps({"op": "delivered", "req": req, "thread_id": thread_id, "seq": seq})


def answering(req: str) -> Predicate:
    return lambda topic, event: event.get("req") == req


async def test_delivered_op_acks_and_publishes_once_per_move(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    await post_message(http, alice, thread_id)
    _, last = await post_message(http, alice, thread_id)
    prefix = server.settings.topic_prefix
    uplink = f"{prefix}/up/{bob.user_id}"
    seen: list[tuple[str, dict[str, Any]]] = []
    async with mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b:
        await a.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        acks: dict[str, int] = {}
        for req, seq in (("d1", last - 1), ("d2", 0), ("d3", last + 50), ("d4", last)):
            await b.publish(uplink, delivered(thread_id, seq, req), qos=1)
            ack = await next_event(b, answering(req))
            assert ack["type"] == "ack", ack
            assert set(ack["data"]) == {"thread_id", "delivered_seq"}
            assert ack["data"]["thread_id"] == thread_id
            acks[req] = ack["data"]["delivered_seq"]
        assert acks == {"d1": last - 1, "d2": last - 1, "d3": last, "d4": last}
        # The bridge publishes in order: the read's receipt comes after every earlier one.
        await b.publish(uplink, json.dumps({"op": "read", "thread_id": thread_id, "seq": last}),
                        qos=1)
        await next_event(a, lambda t, e: e["type"] == "read_receipt", seen=seen)
    assert [e for _, e in seen if e["type"] == "delivery_receipt"] == [
        {"type": "delivery_receipt", "thread_id": thread_id, "user_id": bob.user_id, "seq": s}
        for s in (last - 1, last)]


async def test_delivered_op_refusals_carry_the_req(server: Stack, http: httpx.AsyncClient,
                                                   ) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    await post_message(http, alice, thread_id)
    prefix = server.settings.topic_prefix
    cases = [
        (mallory, delivered(thread_id, 1, "nm"), "nm", 3003),
        (bob, delivered(thread_id, -1, "neg"), "neg", 1001),
        (bob, delivered(thread_id, "2", "text"), "text", 1001),
        (bob, delivered(thread_id, 2**63, "huge"), "huge", 1001),
        (bob, json.dumps({"op": "delivered", "req": "noseq", "thread_id": thread_id}), "noseq",
         1001),
        (bob, delivered("tnope", 1, "nothread"), "nothread", 3001),
    ]
    for account, payload, req, code in cases:
        async with mqtt_session(server.settings, account) as client:
            await client.subscribe(f"{prefix}/u/{account.user_id}", qos=1)
            await client.publish(f"{prefix}/up/{account.user_id}", payload, qos=1)
            answer = await next_event(client, answering(req))
        assert (answer["type"], answer["code"]) == ("error", code), answer
    # Nothing moved.
    assert (await positions(http, alice, thread_id))[bob.user_id][1] == 0


async def test_read_op_moves_the_delivered_mark(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob, carol)
    message_id, seq = await post_message(http, alice, thread_id)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as b, mqtt_session(server.settings, carol) as c:
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await c.subscribe(f"{prefix}/u/{carol.user_id}", qos=1)
        await b.publish(f"{prefix}/up/{bob.user_id}", json.dumps(
            {"op": "read", "req": "r", "thread_id": thread_id, "seq": seq}), qos=1)
        await c.publish(f"{prefix}/up/{carol.user_id}", delivered(thread_id, seq, "d"), qos=1)
        assert (await next_event(b, lambda t, e: e.get("req") == "r"))["type"] == "ack"
        assert (await next_event(c, lambda t, e: e.get("req") == "d"))["type"] == "ack"
    assert (await positions(http, alice, thread_id))[bob.user_id] == (seq, seq)
    assert await receipt_sets(http, alice, thread_id, message_id) == {
        "read_by": {bob.user_id}, "delivered_to": {bob.user_id, carol.user_id}, "pending": set()}
