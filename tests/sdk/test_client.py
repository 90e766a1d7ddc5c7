"""The SDK against real servers (both stacks): send resolves with the stored seq, a retry is
never stored twice, new threads are followed, refusals are typed, a client that was away
catches up in order, and a session the server ends stops the client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiomqtt
import pytest

from mqim_client import (
    ApiError,
    Client,
    CommandError,
    DownlinkEvent,
    MessageEvent,
    MqimClientError,
    SessionEndedError,
    ThreadAddedEvent,
    ThreadLogEvent,
    ThreadRemovedEvent,
)
from mqim_client.link import Broker
from tests.helpers import free_port
from tests.sdk.conftest import PASSWORD, Factory, signed_up
from tests.stacks import Stack


async def next_of(client: Client, predicate: Callable[[DownlinkEvent], bool],
                  seen: list[DownlinkEvent] | None = None) -> DownlinkEvent:
    """The next event matching `predicate` (others go to `seen`), within 10 s."""
    async with asyncio.timeout(10):
        async for event in client.events():
            if predicate(event):
                return event
            if seen is not None:
                seen.append(event)
    raise AssertionError("events() ended")


def message(body: str) -> Callable[[DownlinkEvent], bool]:
    return lambda event: isinstance(event, MessageEvent) and event.body == body


async def test_send_resolves_with_the_seq_and_reaches_the_other_side(clients: Factory) -> None:
    alice, bob = await signed_up(clients()), await signed_up(clients())
    thread_id = await alice.create_thread("group", [bob.user_id])  # log:subscribe is seq 1
    await alice.connect()
    await bob.connect()
    assert thread_id in alice.threads()
    first = await alice.send(thread_id, "hello")
    second = await alice.send(thread_id, "again", client_msg_id="mine-1")
    assert (first.seq, first.thread_id, first.duplicate) == (2, thread_id, False)
    assert (second.seq, second.client_msg_id) == (3, "mine-1")
    got = await next_of(bob, message("hello"))
    assert isinstance(got, MessageEvent)
    assert (got.seq, got.sender_id, got.message_id) == (2, alice.user_id, first.message_id)
    _ = await next_of(bob, message("again"))
    assert bob.positions()[thread_id] == 3
    assert [e.seq for e in await bob.history(thread_id)] == [1, 2, 3]
    assert alice.stats.retries == 0


async def test_a_retry_after_a_dropped_ack_is_stored_once(clients: Factory, server: Stack) -> None:
    """The first attempt goes out on another connection whose ack nobody reads; the SDK's
    send with the same client_msg_id gets the first result back, and bob sees one message."""
    alice, bob = await signed_up(clients()), await signed_up(clients())
    thread_id = await alice.create_thread("group", [bob.user_id])
    await alice.connect()
    await bob.connect()
    creds, prefix = alice.session.mqtt, alice.session.mqtt.topic_prefix
    async with aiomqtt.Client(server.settings.mqtt.host, server.settings.mqtt.port,
                              username=creds.username, password=creds.password,
                              identifier=f"{alice.user_id}:lost-ack") as raw:
        await raw.publish(f"{prefix}/up/{alice.user_id}", json.dumps({
            "op": "send", "req": "lost", "thread_id": thread_id, "client_msg_id": "once",
            "type": "text", "body": "only once"}), qos=1)
    stored = await next_of(bob, message("only once"))
    retried = await alice.send(thread_id, "only once", client_msg_id="once")
    assert isinstance(stored, MessageEvent)
    assert (retried.duplicate, retried.seq, retried.message_id) == (
        True, stored.seq, stored.message_id)
    await alice.send(thread_id, "after")  # bob's barrier: everything before it has arrived
    seen: list[DownlinkEvent] = []
    await next_of(bob, message("after"), seen)
    assert not [e for e in seen if isinstance(e, MessageEvent)]  # the republished copy: dropped
    bodies = [e.body for e in await alice.history(thread_id) if isinstance(e, MessageEvent)]
    assert bodies == ["only once", "after"]


async def test_sends_that_time_out_are_retried_with_the_same_id(clients: Factory) -> None:
    """Each attempt waits 0 s for its ack, so every send is retried: still stored once."""
    alice, bob = await signed_up(clients(send_timeout=0.0)), await signed_up(clients())
    thread_id = await alice.create_thread("group", [bob.user_id])
    await alice.connect()
    await bob.connect()
    results = [await alice.send(thread_id, f"r{i}") for i in range(5)]
    assert [r.seq for r in results] == [2, 3, 4, 5, 6]
    assert alice.stats.retries >= 5
    received = [await next_of(bob, lambda e: isinstance(e, MessageEvent)) for _ in range(5)]
    assert [(e.seq, e.body) for e in received if isinstance(e, MessageEvent)] == [
        (i + 2, f"r{i}") for i in range(5)]
    history = await bob.history(thread_id)
    assert [e.seq for e in history] == [1, 2, 3, 4, 5, 6]


async def test_thread_added_is_followed_and_thread_removed_unfollowed(clients: Factory) -> None:
    alice, bob = await signed_up(clients()), await signed_up(clients())
    await alice.connect()
    thread_id = await bob.create_thread("group", [alice.user_id])
    added = await next_of(alice, lambda e: isinstance(e, ThreadAddedEvent))
    assert isinstance(added, ThreadAddedEvent)
    assert added.thread_id == thread_id
    log = await next_of(alice, lambda e: isinstance(e, ThreadLogEvent))  # caught up from seq 1
    assert isinstance(log, ThreadLogEvent)
    assert (log.seq, log.logMessageType) == (1, "log:subscribe")
    assert thread_id in alice.threads()
    await bob.request("POST", f"/api/threads/{thread_id}/messages", json={"body": "live"})
    live = await next_of(alice, message("live"))
    assert isinstance(live, MessageEvent)
    assert live.seq == 2
    await bob.request("DELETE", f"/api/threads/{thread_id}/members/{alice.user_id}")
    removed = await next_of(alice, lambda e: isinstance(e, ThreadRemovedEvent))
    assert isinstance(removed, ThreadRemovedEvent)
    assert removed.reason == "removed"
    async with asyncio.timeout(5):
        while True:
            if thread_id not in alice.threads():
                break
            await asyncio.sleep(0.05)  # polling: the unsubscribe runs in a task of its own


async def test_refusals_are_typed(clients: Factory) -> None:
    alice, bob = await signed_up(clients()), await signed_up(clients())
    theirs = await bob.create_thread("group", [])
    await alice.connect()
    with pytest.raises(CommandError) as refused:
        await alice.send(theirs, "let me in")
    assert (refused.value.code, refused.value.error) == (3003, "not_a_member")
    with pytest.raises(CommandError) as empty:
        await alice.send(await alice.create_thread("group", []), "  ")
    assert (empty.value.code, empty.value.error) == (4003, "content_invalid")
    with pytest.raises(ApiError) as missing:
        await alice.history("tnope")
    assert (missing.value.status, missing.value.code, missing.value.error) == (
        404, 3001, "thread_not_found")
    with pytest.raises(ApiError) as wrong:
        await clients().login(alice.user_id, "wrong-pass-1")
    assert (wrong.value.status, wrong.value.code) == (401, 2005)


async def test_a_client_that_was_away_catches_up_in_order(clients: Factory) -> None:
    """bob resumes from a saved position: what was sent meanwhile comes from history, once
    and in order, then live messages follow."""
    alice, bob = await signed_up(clients()), await signed_up(clients())
    thread_id = await alice.create_thread("group", [bob.user_id])
    for i in range(250):  # more than one page of history
        await alice.request("POST", f"/api/threads/{thread_id}/messages",
                            json={"client_msg_id": f"away-{i}", "body": f"away {i}"})
    await bob.connect(positions={thread_id: 1})
    await alice.connect()
    await alice.send(thread_id, "live")
    seqs = []
    async with asyncio.timeout(20):
        async for event in bob.events():
            if isinstance(event, MessageEvent):
                seqs.append(event.seq)
                if event.body == "live":
                    break
    assert seqs == list(range(2, 253))
    assert bob.stats.caught_up >= 250


async def test_a_session_the_server_ends_stops_the_client(clients: Factory) -> None:
    alice = await signed_up(clients())
    await alice.connect()
    replacement = clients()
    await replacement.login(alice.user_id, PASSWORD)  # same platform: alice's session ends
    with pytest.raises(SessionEndedError, match="replaced"):
        await next_of(alice, lambda e: False)
    with pytest.raises(SessionEndedError):
        await alice.send(next(iter(alice.threads()), "t0"), "too late")
    with pytest.raises(SessionEndedError):  # the refresh token died with the session
        await alice.refresh()


async def test_connect_gives_up_after_its_timeout(server: Stack) -> None:
    client = Client(f"http://{server.settings.http}", broker=f"mqtt://127.0.0.1:{free_port()}")
    try:
        await signed_up(client)
        with pytest.raises(TimeoutError):
            await client.connect(timeout=1)
        with pytest.raises(MqimClientError, match="connect"):
            await client.send("t0", "nowhere")
    finally:
        await client.close()


def test_broker_urls() -> None:
    assert Broker.parse("mqtt://h") == Broker("h", 1883, "tcp", None, False)
    assert Broker.parse("wss://h/mqtt") == Broker("h", 443, "websockets", "/mqtt", True)
    assert Client("http://api.example:8000").broker.host == "api.example"
    with pytest.raises(ValueError, match="expected"):
        Broker.parse("http://h:1883")
