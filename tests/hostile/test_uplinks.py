"""Hostile MQTT uplinks, each as an attacker would send it, in both modes: the attacker gets an
`error` carrying its `req`, and a victim sending in the same moment is acked within a second,
with nothing lost; a reused client_msg_id never shows one thread's message in another."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiomqtt
import asyncpg
import httpx
import pytest

from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
)
from tests.hostile.conftest import count, record_max
from tests.stacks import POSTGRES_ADMIN, Stack

VICTIM_ACK_BOUND = 1.0  # seconds


def _send(thread: str, req: str, **fields: object) -> bytes:
    base: dict[str, object] = {"op": "send", "req": req, "thread_id": thread,
                               "client_msg_id": req, "body": "x"}
    return json.dumps({**base, **fields}).encode()


def _raw_send(thread_id: str, req: str, field: str, raw_json: bytes) -> bytes:
    """A send whose `field` is given as raw JSON text (for what json.dumps cannot produce)."""
    head = _send(thread_id, req)[:-1]
    return head + b', "' + field.encode() + b'": ' + raw_json + b"}"


# name -> (payload for a thread id, expected code, expected req)
POISONS: dict[str, tuple[Callable[[str], bytes], int, str | None]] = {
    "300-char thread id in typing": (
        lambda t: json.dumps({"op": "typing", "req": "p1", "thread_id": "t" * 300}).encode(),
        1001, "p1"),
    "lone surrogate in body": (lambda t: _raw_send(t, "p2", "body", b'"\\ud800"'), 1001, "p2"),
    "lone surrogate in client_msg_id": (
        lambda t: _raw_send(t, "p3", "client_msg_id", b'"\\udfff"'), 1001, "p3"),
    "5000 open brackets": (lambda t: b"[" * 5000, 1001, None),
    "1000-deep attachments": (
        lambda t: _raw_send(t, "p5", "attachments", b"[" * 1000 + b"]" * 1000), 1001, "p5"),
    "5000-digit read seq": (
        lambda t: b'{"op": "read", "req": "p6", "thread_id": "%s", "seq": %s}' % (
            t.encode(), b"9" * 5000), 1001, "p6"),
    "read seq beyond BIGINT": (
        lambda t: json.dumps({"op": "read", "req": "p7", "thread_id": t, "seq": 2**63}).encode(),
        1001, "p7"),
    "NUL in client_msg_id": (lambda t: _send(t, "p8", client_msg_id="a\0b"), 1001, "p8"),
    "NUL in a mention": (lambda t: _send(t, "p9", mentions=["bob\0"]), 1001, "p9"),
    "trailing newline in thread id": (lambda t: _send(t, "p10", thread_id=t + "\n"), 1001, "p10"),
    "wrong types everywhere": (
        lambda t: _send(t, "p11", thread_id=[1], client_msg_id={"a": 1}, body=7), 1001, "p11"),
    "over 64 KiB, req first": (lambda t: _send(t, "p12", body="y" * 70_000), 1012, "p12"),
    "not UTF-8": (lambda t: b'{"op": "send", "req": "p13", "body": "\xff\xfe"}', 1001, "p13"),
}


async def _party(server: Stack, http: httpx.AsyncClient) -> tuple[Account, Account, str, str]:
    """An attacker and a victim, each in a group of their own with a third user."""
    attacker, victim, bystander = await register(http), await register(http), await register(http)
    return (attacker, victim, await create_group(http, attacker, bystander),
            await create_group(http, victim, bystander))


def _reply_to(req: str | None) -> Callable[[str, dict[str, object]], bool]:
    return lambda topic, event: event.get("type") in ("ack", "error") and event.get("req") == req


async def _victim_send(client: aiomqtt.Client, server: Stack, victim: Account, thread_id: str,
                       ) -> tuple[float, dict[str, object]]:
    """One send by the victim; returns the seconds until its ack, and the ack."""
    req = unique_id("v-")
    started = time.monotonic()
    await client.publish(f"{server.settings.topic_prefix}/up/{victim.user_id}",
                         send_command(thread_id, req, "victim's message", req=req), qos=1)
    ack = await next_event(client, _reply_to(req), timeout=10)
    return time.monotonic() - started, ack


@pytest.mark.parametrize("name", list(POISONS))
async def test_poison_uplink_gets_its_error_and_harms_no_one(
    server: Stack, http: httpx.AsyncClient, name: str
) -> None:
    make, code, req = POISONS[name]
    attacker, victim, attacker_thread, victim_thread = await _party(server, http)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, attacker) as a, \
            mqtt_session(server.settings, victim) as v:
        await a.subscribe(f"{prefix}/u/{attacker.user_id}", qos=1)
        await v.subscribe(f"{prefix}/u/{victim.user_id}", qos=1)
        # Poison and victim's send back to back, so the bridge sees them in one batch.
        await a.publish(f"{prefix}/up/{attacker.user_id}", make(attacker_thread), qos=1)
        latency, ack = await _victim_send(v, server, victim, victim_thread)
        error = await next_event(a, lambda t, e: e.get("type") in ("ack", "error"))
        # The attacker's next, good command works at once: the bridge did not pause.
        good = unique_id("g-")
        await a.publish(f"{prefix}/up/{attacker.user_id}",
                        send_command(attacker_thread, good, "fine now", req=good), qos=1)
        after = await next_event(a, _reply_to(good))
    count("mqtt uplinks", "inputs tried")
    record_max("mqtt uplinks", "worst victim ack s", round(latency, 3))
    assert ack["type"] == "ack", ack
    assert latency < VICTIM_ACK_BOUND
    assert (error["type"], error["code"], error["req"]) == ("error", code, req), error
    assert isinstance(error["msg"], str)
    assert error["msg"]
    assert after["type"] == "ack"
    history = await http.get(f"/api/threads/{attacker_thread}/messages", headers=attacker.auth)
    # Only the creation event and the good message: the poison stored nothing.
    assert [e.get("body") for e in history.json()["data"]] == [None, "fine now"]


async def test_poison_stream_never_stalls_a_victim(server: Stack, http: httpx.AsyncClient) -> None:
    """One poison used to pause the bridge up to 10 s, and the pause never reset: a poison every
    few hundred ms then stopped all messaging. Now the victim's every send is acked at once."""
    attacker, victim, attacker_thread, victim_thread = await _party(server, http)
    prefix = server.settings.topic_prefix
    poisons = [make(attacker_thread) for make, _, _ in POISONS.values()]
    stop = asyncio.Event()

    async def attack(client: aiomqtt.Client) -> int:
        sent = 0
        while not stop.is_set():
            await client.publish(f"{prefix}/up/{attacker.user_id}", poisons[sent % len(poisons)],
                                 qos=1)
            sent += 1
            await asyncio.sleep(0.02)
        return sent

    async with mqtt_session(server.settings, attacker) as a, \
            mqtt_session(server.settings, victim) as v:
        await v.subscribe(f"{prefix}/u/{victim.user_id}", qos=1)
        attacking = asyncio.create_task(attack(a))
        latencies = []
        for _ in range(20):
            latency, ack = await _victim_send(v, server, victim, victim_thread)
            assert ack["type"] == "ack", ack
            latencies.append(latency)
            await asyncio.sleep(0.05)
        stop.set()
        poisons_sent = await attacking
    count("mqtt uplinks", "inputs tried", poisons_sent)
    record_max("mqtt uplinks", "worst victim ack s", round(max(latencies), 3))
    assert max(latencies) < VICTIM_ACK_BOUND, latencies
    history = await http.get(f"/api/threads/{victim_thread}/messages", headers=victim.auth,
                             params={"limit": 200})
    assert len([e for e in history.json()["data"] if e["type"] == "message"]) == 20


async def _group_and_direct(http: httpx.AsyncClient) -> tuple[Account, Account, str, str]:
    """alice in a group with bob, and in a direct thread with erin."""
    alice, bob, erin = await register(http), await register(http), await register(http)
    group = await create_group(http, alice, bob)
    direct = (await http.post("/api/threads", headers=alice.auth, json={
        "type": "direct", "user_ids": [erin.user_id]})).json()["data"]["thread_id"]
    return alice, erin, group, direct


async def test_client_msg_id_reused_in_another_thread_is_refused_over_mqtt(
    server: Stack, http: httpx.AsyncClient
) -> None:
    """alice's group message must never reach erin through their direct thread."""
    alice, erin, group, direct = await _group_and_direct(http)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as a, \
            mqtt_session(server.settings, erin) as e:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        await e.subscribe(f"{prefix}/t/{direct}", qos=1)
        up = f"{prefix}/up/{alice.user_id}"
        await a.publish(up, send_command(group, "a-1", "for the group only", req="r1"), qos=1)
        first = await next_event(a, _reply_to("r1"))
        await a.publish(up, send_command(direct, "a-1", "hello erin", req="r2"), qos=1)
        reused = await next_event(a, _reply_to("r2"))
        # The same client_msg_id twice in one batch, in two threads: the second is refused.
        await a.publish(up, send_command(direct, "a-2", "one", req="r3"), qos=1)
        await a.publish(up, send_command(group, "a-2", "two", req="r4"), qos=1)
        replies = [await next_event(a, _reply_to(r)) for r in ("r3", "r4")]
        seen_by_erin = await next_event(e, lambda t, ev: ev.get("type") == "message")
    assert first["type"] == "ack"
    assert (reused["type"], reused["code"], reused["error"]) == (
        "error", 4002, "client_msg_id_conflict")
    assert [r["type"] for r in replies] == ["ack", "error"]
    assert replies[1]["code"] == 4002
    # The first thing erin ever sees on the direct thread is alice's "one", not the group's.
    assert (seen_by_erin["thread_id"], seen_by_erin["body"]) == (direct, "one")
    group_history = await http.get(f"/api/threads/{group}/messages", headers=alice.auth)
    assert [e.get("body") for e in group_history.json()["data"]] == [None, "for the group only"]


async def test_client_msg_id_reused_in_another_thread_is_refused_over_http(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, erin, group, direct = await _group_and_direct(http)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, erin) as e:
        await e.subscribe(f"{prefix}/t/{direct}", qos=1)
        sent = await http.post(f"/api/threads/{group}/messages", headers=alice.auth,
                               json={"client_msg_id": "a-1", "body": "for the group only"})
        reused = await http.post(f"/api/threads/{direct}/messages", headers=alice.auth,
                                 json={"client_msg_id": "a-1", "body": "hello erin"})
        retried = await http.post(f"/api/threads/{group}/messages", headers=alice.auth,
                                  json={"client_msg_id": "a-1", "body": "for the group only"})
        fresh = await http.post(f"/api/threads/{direct}/messages", headers=alice.auth,
                                json={"client_msg_id": "a-2", "body": "hello erin"})
        seen_by_erin = await next_event(e, lambda t, ev: ev.get("type") == "message")
    assert sent.status_code == 201
    assert reused.status_code == 409, reused.text
    assert reused.json()["code"] == 4002
    # A true retry, in its own thread, is still answered with the first result.
    assert retried.status_code == 200
    assert retried.json()["data"]["message_id"] == sent.json()["data"]["message_id"]
    assert retried.json()["data"]["thread_id"] == group
    assert fresh.status_code == 201
    assert (seen_by_erin["thread_id"], seen_by_erin["body"]) == (direct, "hello erin")


async def test_dropped_database_connections_cost_no_send(
    server: Stack, http: httpx.AsyncClient
) -> None:
    """PostgreSQL closes every connection of mqim's (a failover, an admin's terminate): the sends
    in flight are retried on fresh connections and acked, none is answered with an error."""
    if not server.settings.database_url:
        pytest.skip("the embedded mode's SQLite has no connections to drop")
    _, victim, _, victim_thread = await _party(server, http)
    database = server.settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    prefix = server.settings.topic_prefix
    try:
        async with mqtt_session(server.settings, victim) as v:
            await v.subscribe(f"{prefix}/u/{victim.user_id}", qos=1)
            for _ in range(6):
                dropped = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
                assert dropped >= 1
                _, ack = await _victim_send(v, server, victim, victim_thread)
                assert ack["type"] == "ack", ack
    finally:
        await admin.close()
