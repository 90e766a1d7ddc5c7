"""Hostile MQTT clients against the embedded amqtt broker: hand-built packets on real sockets.

Each test is the attack, then checks the good outcome (the connection is closed, nothing leaks,
nothing hidden runs) and that another user is unaffected: a victim connected throughout still
gets its send acked within a second. Most run against a real `mqim serve` (`embedded_server`);
the CONNECT timeout and a few internals run against an in-process MqimBroker with a real
listener, started with a 1 s CONNECT timeout, where the victim must still receive a message
within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import psutil
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from broker.embedded.framing import MAX_PACKET_BYTES
from tests.helpers import (
    Account,
    register,
    unique_id,
)
from tests.hostile.mqtt_raw import (
    CLOSE_WAIT,
    CONNACK_ACCEPTED,
    MB,
    assert_never_answered,
    connect_packet,
    hidden_noop,
    packet,
    publish_packet,
    raw_connection,
    raw_session,
    remaining_length,
    string,
    victim_online,
    watcher,
)
from tests.stacks import Stack

logger = logging.getLogger(__name__)

# --- packet size --------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["CONNECT", "PUBLISH after CONNECT"])
async def test_a_100_mb_packet_is_refused_from_its_header(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, where: str
) -> None:
    server = psutil.Process(embedded_server.process.pid)
    settings = embedded_server.settings
    attacker = await register(embedded_http)
    announced = 100 * 1000 * 1000
    async with victim_online(embedded_server, embedded_http) as victim:
        baseline = peak = server.memory_info().rss

        async def watch_rss() -> None:
            nonlocal peak
            while True:
                peak = max(peak, server.memory_info().rss)
                await asyncio.sleep(0.01)

        watching = asyncio.create_task(watch_rss())
        try:
            async with contextlib.AsyncExitStack() as stack:
                if where == "CONNECT":
                    raw = await stack.enter_async_context(raw_connection(settings))
                    header = b"\x10" + remaining_length(announced)
                else:
                    raw = await stack.enter_async_context(raw_session(settings, attacker))
                    topic = string(f"{settings.topic_prefix}/up/{attacker.user_id}")
                    header = b"\x32" + remaining_length(announced) + topic + b"\x00\x01"
                started = asyncio.get_running_loop().time()
                sent = 0
                with contextlib.suppress(ConnectionError):
                    await raw.send(header)
                    chunk = b"\x30\x00" * (32 * 1024)  # 64 KiB of what would parse as packets
                    while sent < 8 * MB:
                        await raw.send(chunk)
                        sent += len(chunk)
                assert await raw.received_until_closed() == b""
                elapsed = asyncio.get_running_loop().time() - started
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        after = server.memory_info().rss
        logger.info("%s: closed after %.2f s and %d bytes of body sent; server RSS baseline "
                    "%.1f MB, peak %.1f MB, after %.1f MB", where, elapsed, sent,
                    baseline / MB, peak / MB, after / MB)
        assert elapsed < CLOSE_WAIT
        assert peak - baseline < 64 * MB
        await victim.check()


async def test_packets_up_to_the_limit_pass_and_one_byte_more_closes(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    settings = embedded_server.settings
    attacker = await register(embedded_http)
    topic = f"{settings.topic_prefix}/up/{attacker.user_id}"

    def publish_of_size(total: int) -> bytes:
        overhead = len(publish_packet(topic, b"", qos=1)) + 2  # the length grows to 4 bytes
        return publish_packet(topic, b"x" * (total - overhead), qos=1, packet_id=9)

    largest = publish_of_size(MAX_PACKET_BYTES)
    assert len(largest) == MAX_PACKET_BYTES
    async with raw_session(settings, attacker) as raw:
        await raw.send(largest)
        assert await raw.read(4) == b"\x40\x02\x00\x09"  # PUBACK
    async with raw_session(settings, attacker) as raw:
        with contextlib.suppress(ConnectionError):
            await raw.send(publish_of_size(MAX_PACKET_BYTES + 1))
        assert await raw.received_until_closed() == b""


# --- malformed packets --------------------------------------------------------------------------

@pytest.mark.parametrize(("qos", "wildcard"), [(0, "+"), (1, "+"), (1, "#")])
async def test_a_wildcard_publish_closes_the_connection_and_its_payload_never_runs(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, qos: int, wildcard: str
) -> None:
    attacker = await register(embedded_http)
    req = unique_id("hidden-")
    attack = publish_packet(f"{embedded_server.settings.topic_prefix}/up/{wildcard}",
                            hidden_noop(embedded_server, attacker, req), qos=qos)
    async with (victim_online(embedded_server, embedded_http) as victim,
                watcher(embedded_server, attacker) as watch,
                raw_session(embedded_server.settings, attacker) as raw):
        await raw.send(attack)
        assert await raw.received_until_closed() == b""  # no PUBACK, for either packet
        await assert_never_answered(embedded_server, attacker, watch, req)
        await victim.check()


MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    # each wraps a hidden PUBLISH that amqtt, parsing straight off the socket, would run
    "PUBACK longer than its packet id": lambda hidden: packet(0x40, b"\x00\x01" + hidden),
    "reserved packet type 0": lambda hidden: packet(0x00, hidden),
    "reserved packet type 15": lambda hidden: packet(0xF0, hidden),
    "topic name not UTF-8": lambda hidden: publish_packet(b"im/up/\xff\xfe", hidden),
    "PUBLISH with QoS 3": lambda hidden: packet(0x36, string("im/up/x") + b"\x00\x01" + hidden),
    "SUBSCRIBE without its reserved flag": lambda hidden: packet(
        0x80, b"\x00\x01" + string("im/u/x") + b"\x00") + hidden,
    "SUBSCRIBE with QoS 3": lambda hidden: packet(
        0x82, b"\x00\x01" + string("im/u/x") + b"\x03") + hidden,
    "a second CONNECT": lambda hidden: connect_packet("again", "a", "b") + hidden,
    "a 5-byte remaining length": lambda hidden: b"\x30\xff\xff\xff\xff\x7f" + hidden,
    "CONNACK from a client": lambda hidden: packet(0x20, b"\x00\x00") + hidden,
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_malformed_packet_closes_the_connection_and_nothing_after_it_runs(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, case: str
) -> None:
    attacker = await register(embedded_http)
    req = unique_id("hidden-")
    attack = MALFORMED[case](hidden_noop(embedded_server, attacker, req))
    async with (victim_online(embedded_server, embedded_http) as victim,
                watcher(embedded_server, attacker) as watch,
                raw_session(embedded_server.settings, attacker) as raw):
        with contextlib.suppress(ConnectionError):
            await raw.send(attack)
        assert await raw.received_until_closed() == b""
        await assert_never_answered(embedded_server, attacker, watch, req)
        await victim.check()


async def test_a_client_silent_past_its_keep_alive_is_disconnected(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    attacker = await register(embedded_http)
    settings = embedded_server.settings
    async with raw_connection(settings) as raw:
        await raw.send(connect_packet(f"{attacker.user_id}:idle", attacker.user_id,
                                      attacker.token, keep_alive=1))
        assert await raw.read(4) == CONNACK_ACCEPTED
        started = asyncio.get_running_loop().time()
        assert await raw.received_until_closed(timeout=5) == b""
        assert 1.4 <= asyncio.get_running_loop().time() - started <= 4



# --- the same over WebSocket --------------------------------------------------------------------

@asynccontextmanager
async def ws_session(stack: Stack, account: Account) -> AsyncIterator[ClientConnection]:
    """A hand-driven MQTT-over-WebSocket connection, past an accepted CONNECT."""
    ws = stack.settings.mqtt_ws
    assert ws is not None
    async with ws_connect(f"ws://{ws.host}:{ws.port}/",
                          subprotocols=[Subprotocol("mqtt")]) as conn:
        await conn.send(connect_packet(
            f"{account.user_id}:ws-{unique_id()}", account.user_id, account.token))
        async with asyncio.timeout(CLOSE_WAIT):
            assert await conn.recv() == CONNACK_ACCEPTED
        yield conn


async def ws_received_until_closed(conn: ClientConnection) -> bytes:
    data = bytearray()
    try:
        async with asyncio.timeout(CLOSE_WAIT):
            async for message in conn:
                data += message if isinstance(message, bytes) else message.encode()
    except ConnectionClosed:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {CLOSE_WAIT} s (got {len(data)} bytes: "
                             f"{bytes(data[:64])!r})") from None
    return bytes(data)


@pytest.mark.parametrize("attack", ["wildcard PUBLISH", "100 MB PUBLISH"])
async def test_over_a_websocket_a_bad_packet_closes_the_connection_too(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, attack: str
) -> None:
    server = psutil.Process(embedded_server.process.pid)
    attacker = await register(embedded_http)
    prefix = embedded_server.settings.topic_prefix
    req = unique_id("hidden-")
    hidden = hidden_noop(embedded_server, attacker, req)
    async with (victim_online(embedded_server, embedded_http, websocket=True) as victim,
                watcher(embedded_server, attacker) as watch,
                ws_session(embedded_server, attacker) as conn):
        baseline = server.memory_info().rss
        with contextlib.suppress(ConnectionClosed):
            if attack == "wildcard PUBLISH":
                await conn.send(publish_packet(f"{prefix}/up/+", hidden, qos=1))
            else:
                await conn.send(b"\x32" + remaining_length(100 * 1000 * 1000)
                                + string(f"{prefix}/up/{attacker.user_id}") + b"\x00\x01")
                for _ in range(16):  # 8 MB, in frames under the server's 1 MiB message limit
                    await conn.send(hidden * (512 * 1024 // len(hidden)))
        assert await ws_received_until_closed(conn) == b""
        assert server.memory_info().rss - baseline < 64 * MB
        await assert_never_answered(embedded_server, attacker, watch, req)
        await victim.check()

