"""The end-to-end core cases against a real 3-node RabbitMQ cluster (tests/cluster/stack.py):
real MQTT clients on different nodes, mqim's HTTP hooks deciding every login, subscribe and
publish, the bridge consuming the uplink quorum queue, PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import pytest
from aiomqtt.exceptions import MqttConnectError

from tests.cluster.rabbitmq import rabbitmq_available
from tests.cluster.stack import ClusterStack
from tests.helpers import (
    Account,
    create_group,
    granted,
    next_event,
    register,
    send_command,
    unique_id,
    whole_timeline,
)

pytestmark = pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server not installed")


@asynccontextmanager
async def client(stack: ClusterStack, node: int, account: Account, **kwargs: Any,
                 ) -> AsyncIterator[aiomqtt.Client]:
    where = stack.mqtt(node)
    options: dict[str, Any] = {"username": account.mqtt["username"],
                               "password": account.mqtt["password"],
                               "identifier": account.mqtt["client_id"]} | kwargs
    async with aiomqtt.Client(where.host, where.port, **options) as connected:
        yield connected


def up(stack: ClusterStack, account: Account) -> str:
    return f"{stack.settings.topic_prefix}/up/{account.user_id}"


def personal(stack: ClusterStack, account: Account) -> str:
    return f"{stack.settings.topic_prefix}/u/{account.user_id}"


def thread_topic(stack: ClusterStack, thread_id: str) -> str:
    return f"{stack.settings.topic_prefix}/t/{thread_id}"


async def subscribe_refused(conn: aiomqtt.Client, topic: str) -> bool:
    """RabbitMQ 3.10 answers a refused SUBSCRIBE by closing the connection (no SUBACK 0x80)."""
    try:
        codes = granted(await conn.subscribe(topic, qos=1, timeout=2))
    except aiomqtt.MqttError:
        return True
    return codes == [0x80]


async def drain(conn: aiomqtt.Client) -> None:
    """Read until the connection ends (raises MqttError when the broker closes it)."""
    async for _ in conn.messages:
        pass


def is_ack(req: str) -> Any:
    return lambda topic, event: event.get("req") == req and event.get("type") in ("ack", "error")


async def test_three_nodes_and_two_bridges_consuming_the_uplink_quorum_queue(
    stack: ClusterStack,
) -> None:
    queue_url = f"{stack.cluster.management_url(1)}/api/queues/%2F/mqim-uplinks"
    async with httpx.AsyncClient(auth=stack.cluster.admin, timeout=5) as admin:
        nodes = (await admin.get(f"{stack.cluster.management_url(2)}/api/nodes")).json()
        async with asyncio.timeout(15):  # consumer counts lag by the statistics interval
            while (queue := (await admin.get(queue_url)).json()).get("consumers") != 2:  # noqa: ASYNC110
                await asyncio.sleep(0.5)  # polling the management API
    assert sorted(n["name"] for n in nodes if n["running"]) == sorted(
        n.name for n in stack.cluster.nodes)
    assert queue["type"] == "quorum"
    assert len(queue["members"]) == 3  # replicated on every node


async def test_login_needs_the_users_live_token(stack: ClusterStack) -> None:
    alice, bob = await register(stack.http), await register(stack.http)
    for node in range(3):
        async with client(stack, node, alice):
            pass
    with pytest.raises(MqttConnectError):
        async with client(stack, 1, alice, password="not-a-token"):
            pass
    with pytest.raises(MqttConnectError):
        async with client(stack, 2, alice, password=bob.token):
            pass
    with pytest.raises(MqttConnectError):  # bob's client id
        async with client(stack, 0, alice, identifier=bob.user_id):
            pass


async def test_subscribe_to_a_thread_you_are_not_in_is_refused(stack: ClusterStack) -> None:
    owner, carol = await register(stack.http), await register(stack.http)
    thread_id = await create_group(stack.http, owner)
    for topic in (thread_topic(stack, thread_id), f"{stack.settings.topic_prefix}/t/+"):
        async with client(stack, 2, carol) as c:
            assert await subscribe_refused(c, topic)
    async with client(stack, 2, carol) as c:
        assert granted(await c.subscribe(personal(stack, carol), qos=1)) == [1]


async def test_publish_on_another_users_uplink_is_refused(stack: ClusterStack) -> None:
    alice, bob = await register(stack.http), await register(stack.http)
    thread_id = await create_group(stack.http, alice, bob)
    forged = send_command(thread_id, "forged", "as bob")
    # RabbitMQ closes a connection whose publish is refused.
    async with client(stack, 1, alice) as a:
        with pytest.raises(aiomqtt.MqttError):  # no PUBACK: the connection is gone
            await a.publish(up(stack, bob), forged, qos=1, timeout=3)
    async with client(stack, 0, bob) as b:  # a real send after it: the bridge is past it
        await b.subscribe(personal(stack, bob), qos=1)
        await b.publish(up(stack, bob), send_command(thread_id, "real", "by bob"), qos=1)
        assert (await next_event(b, is_ack("real"), timeout=10))["type"] == "ack"
    bodies = [e.get("body") for e in await whole_timeline(stack.http, alice, thread_id)]
    assert "by bob" in bodies
    assert "as bob" not in bodies


async def test_sends_on_two_nodes_are_gapless_and_reach_a_member_on_the_third(
    stack: ClusterStack,
) -> None:
    # A dotted id: its uplink routing key has several words, and must still reach the bridge.
    alice = await register(stack.http, f"{unique_id()}.a")
    bob, carol = await register(stack.http), await register(stack.http)
    thread_id = await create_group(stack.http, alice, bob, carol)
    count = 40
    async with client(stack, 0, alice) as a, client(stack, 1, bob) as b, client(
        stack, 2, carol
    ) as c:
        await c.subscribe(thread_topic(stack, thread_id), qos=1)
        for sender, conn in ((alice, a), (bob, b)):
            await conn.subscribe(personal(stack, sender), qos=1)
        await asyncio.gather(*(
            conn.publish(up(stack, sender), send_command(thread_id, f"{sender.user_id}-{i}",
                                                         f"{sender.user_id} {i}"), qos=1)
            for i in range(count) for sender, conn in ((alice, a), (bob, b))))
        for conn in (a, b):
            for _ in range(count):
                event = await next_event(conn, lambda t, e: e.get("type") in ("ack", "error"),
                                         timeout=30)
                assert event["type"] == "ack", event
        received = [await next_event(c, lambda t, e: e.get("type") == "message", timeout=30)
                    for _ in range(2 * count)]
    # Two bridge workers publish their batches' events on their own connections: every seq
    # arrives once, in seq order per worker only (clients order by seq, as with $share).
    assert sorted(e["seq"] for e in received) == list(range(2, 2 * count + 2))
    stored = [e["body"] for e in await whole_timeline(stack.http, carol, thread_id)
              if e.get("sender_id") in (alice.user_id, bob.user_id)]
    assert sorted(stored) == sorted(f"{s.user_id} {i}" for s in (alice, bob) for i in range(count))


async def test_a_resend_is_stored_once(stack: ClusterStack) -> None:
    alice, bob = await register(stack.http), await register(stack.http)
    thread_id = await create_group(stack.http, alice, bob)
    command = send_command(thread_id, "once", "only once")
    async with client(stack, 1, alice) as a:
        await a.subscribe(personal(stack, alice), qos=1)
        acks = []
        for _ in range(2):
            await a.publish(up(stack, alice), command, qos=1)
            acks.append((await next_event(a, is_ack("once"), timeout=10))["data"])
    assert acks[0]["message_id"] == acks[1]["message_id"]
    assert acks[0]["seq"] == acks[1]["seq"]
    bodies = [e.get("body") for e in await whole_timeline(stack.http, bob, thread_id)]
    assert bodies.count("only once") == 1


async def test_a_removed_member_stops_receiving_at_once(stack: ClusterStack) -> None:
    owner, bob, carol = [await register(stack.http) for _ in range(3)]
    thread_id = await create_group(stack.http, owner, bob, carol)
    topic = thread_topic(stack, thread_id)
    async with client(stack, 0, owner) as o, client(stack, 2, bob) as b, client(
        stack, 2, carol
    ) as c:
        await o.subscribe(personal(stack, owner), qos=1)
        for member in (b, c):
            await member.subscribe(topic, qos=1)
        removed = await stack.http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}",
                                          headers=owner.auth)
        assert removed.status_code == 200, removed.text
        # The first send after the removal: carol (same node) gets it, bob must not.
        await o.publish(up(stack, owner), send_command(thread_id, "after", "secret"), qos=1)
        await next_event(o, is_ack("after"), timeout=10)
        await next_event(c, lambda t, e: e.get("body") == "secret", timeout=10)
        seen: list[tuple[str, dict[str, Any]]] = []
        with pytest.raises(TimeoutError):
            await next_event(b, lambda t, e: e.get("body") == "secret", timeout=1.5, seen=seen)
        assert all(e.get("body") != "secret" for _, e in seen), json.dumps(seen)
        # And the hook refuses the re-subscribe.
        assert await subscribe_refused(b, topic)


async def test_logout_closes_the_sessions_live_connections(stack: ClusterStack) -> None:
    alice = await register(stack.http)
    async with client(stack, 1, alice) as a:
        await a.subscribe(personal(stack, alice), qos=1)
        out = await stack.http.post("/api/auth/logout", headers=alice.auth)
        assert out.status_code == 200, out.text
        with pytest.raises(aiomqtt.MqttError):  # closed by the management API, not a timeout
            await asyncio.wait_for(drain(a), 5)
    with pytest.raises(MqttConnectError):
        async with client(stack, 0, alice):
            pass


async def test_the_apis_publisher_logged_in_through_its_own_hooks_delivers(
    stack: ClusterStack,
) -> None:
    # The stack starts the API before RabbitMQ has the service account (tests/cluster/stack.py):
    # its publisher connected lazily, once the API answered its own login hook.
    alice, bob = await register(stack.http), await register(stack.http)
    thread_id = await create_group(stack.http, alice, bob)
    async with client(stack, 2, bob) as b:
        await b.subscribe(thread_topic(stack, thread_id), qos=1)
        sent = await stack.http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                     json={"client_msg_id": "h1", "body": "over http"})
        assert sent.status_code == 201, sent.text
        event = await next_event(b, lambda t, e: e.get("type") == "message", timeout=10)
    assert event["seq"] == sent.json()["data"]["seq"]
