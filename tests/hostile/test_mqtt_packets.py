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
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psutil
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from broker.acl import ExtraRule
from broker.embedded.broker import MqimBroker, embedded_broker
from broker.embedded.wire import CLOSE_SECONDS, MAX_PACKET_BYTES
from config import Settings
from tests.helpers import (
    Account,
    barrier,
    create_group,
    make_settings,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
)
from tests.stacks import Stack

logger = logging.getLogger(__name__)

MB = 1024 * 1024
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
# Long enough for a loaded machine; what is bounded is that it happens, not its milliseconds.
CLOSE_WAIT = 3.0


# --- packets, by hand -------------------------------------------------------------------------

def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + remaining_length(len(body)) + body


def string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return len(data).to_bytes(2, "big") + data


def connect_packet(
    client_id: str, username: str | None = None, password: str | None = None, *,
    name: bytes = b"MQTT", level: int = 4, keep_alive: int = 60,
) -> bytes:
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    header = string(name) + bytes([level, flags]) + keep_alive.to_bytes(2, "big")
    if level == 5:
        header += b"\x00"  # no properties
    payload = string(client_id) + b"".join(
        string(part) for part in (username, password) if part is not None)
    return packet(0x10, header + payload)


def publish_packet(
    topic: str | bytes, payload: bytes, *, qos: int = 0, packet_id: int = 1
) -> bytes:
    body = string(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return packet(0x30 | qos << 1, body)


# --- raw connections ----------------------------------------------------------------------------

class Raw:
    """One hand-driven TCP connection to the broker."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, n: int) -> bytes:
        async with asyncio.timeout(CLOSE_WAIT):
            return await self.reader.readexactly(n)

    async def received_until_closed(self, timeout: float = CLOSE_WAIT) -> bytes:  # noqa: ASYNC109
        """Everything the broker sends until it closes the connection (fails if it does not)."""
        data = bytearray()
        try:
            async with asyncio.timeout(timeout):
                while chunk := await self.reader.read(65536):
                    data += chunk
        except ConnectionError:  # reset, or a write of ours already found it closed
            pass
        except TimeoutError:
            raise AssertionError(f"still open after {timeout} s (got {len(data)} bytes: "
                                 f"{bytes(data[:64])!r})") from None
        return bytes(data)


@asynccontextmanager
async def raw_connection(settings: Settings) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.open_connection(settings.mqtt.host, settings.mqtt.port)
    try:
        yield Raw(reader, writer)
    finally:
        writer.transport.abort()


@asynccontextmanager
async def raw_session(settings: Settings, account: Account) -> AsyncIterator[Raw]:
    """A raw connection past an accepted CONNECT."""
    async with raw_connection(settings) as raw:
        await raw.send(connect_packet(
            f"{account.user_id}:raw-{unique_id()}", account.user_id, account.token))
        assert await raw.read(4) == CONNACK_ACCEPTED
        yield raw


# --- the victim ---------------------------------------------------------------------------------

def is_ack(req: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda topic, event: event.get("type") == "ack" and event.get("req") == req


VictimCheck = Callable[[], Awaitable[None]]


@dataclass
class Victim:
    account: Account
    check: VictimCheck  # sends a message over MQTT and requires its ack within a second


@asynccontextmanager
async def victim_online(
    stack: Stack, http: httpx.AsyncClient, *, websocket: bool = False
) -> AsyncIterator[Victim]:
    """Another user, connected over MQTT (over TCP, or a WebSocket) for the whole block."""
    victim, friend = await register(http), await register(http)
    thread_id = await create_group(http, victim, friend)
    prefix = stack.settings.topic_prefix
    where = stack.settings.mqtt_ws if websocket else stack.settings.mqtt
    assert where is not None
    async with aiomqtt.Client(
        where.host, where.port, transport="websockets" if websocket else "tcp",
        identifier=victim.mqtt["client_id"], username=victim.user_id, password=victim.token,
    ) as client:
        await client.subscribe(f"{prefix}/u/{victim.user_id}", qos=1)

        async def check() -> None:
            req = unique_id("victim-")
            await client.publish(f"{prefix}/up/{victim.user_id}",
                                 send_command(thread_id, req, "still here"), qos=1)
            await next_event(client, is_ack(req), timeout=1.0)

        await check()
        yield Victim(victim, check)


@asynccontextmanager
async def watcher(stack: Stack, account: Account) -> AsyncIterator[aiomqtt.Client]:
    """A second, well-behaved connection of `account`, on its personal topic."""
    async with aiomqtt.Client(
        stack.settings.mqtt.host, stack.settings.mqtt.port, identifier=f"{account.user_id}:watch",
        username=account.user_id, password=account.token,
    ) as client:
        await client.subscribe(f"{stack.settings.topic_prefix}/u/{account.user_id}", qos=1)
        yield client


async def assert_never_answered(stack: Stack, account: Account, watch: aiomqtt.Client,
                                req: str) -> None:
    """A command `req` hidden in an attack was never executed: everything the bridge answered
    before a later round trip has arrived, and none of it answers `req`."""
    seen: list[tuple[str, dict[str, Any]]] = []
    await barrier(watch, stack.settings, account, seen)
    assert [event for _, event in seen if event.get("req") == req] == []


def hidden_noop(stack: Stack, account: Account, req: str) -> bytes:
    """A QoS 1 PUBLISH of a no-op command on `account`'s uplink: answered if it ever runs."""
    return publish_packet(f"{stack.settings.topic_prefix}/up/{account.user_id}",
                          json.dumps({"op": "noop", "req": req}).encode(), qos=1, packet_id=77)


# --- CONNECT ------------------------------------------------------------------------------------

class TokenDirectory:
    """A Directory for the in-process broker: the password of user `u` is `secret-u`."""

    async def check_credentials(self, username: str, password: str) -> bool:
        return password == f"secret-{username}"

    async def is_member(self, user_id: str, thread_id: str) -> bool:
        return False

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        return ()


SHORT_CONNECT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
async def short_timeout_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Settings, MqimBroker]]:
    """An in-process embedded broker (real listener) that waits 1 s for a CONNECT."""
    settings = make_settings(Path(tmp_path_factory.mktemp("short-timeout")), mqtt_ws=None)
    async with embedded_broker(settings, TokenDirectory(),
                               connect_timeout=SHORT_CONNECT_TIMEOUT) as broker:
        yield settings, broker


@asynccontextmanager
async def in_process_victim(settings: Settings, broker: MqimBroker) -> AsyncIterator[VictimCheck]:
    user = unique_id("victim")
    async with aiomqtt.Client(settings.mqtt.host, settings.mqtt.port, identifier=user,
                              username=user, password=f"secret-{user}") as client:
        await client.subscribe(f"{settings.topic_prefix}/u/{user}", qos=1)

        async def check() -> None:
            token = unique_id()
            await broker.internal_message_broadcast(f"{settings.topic_prefix}/u/{user}",
                                                    token.encode(), qos=1)
            async with asyncio.timeout(1.0):
                message = await anext(aiter(client.messages))
            assert message.payload == token.encode()

        await check()
        yield check


@pytest.mark.parametrize("behaviour", ["silent", "slow CONNECT"])
async def test_a_socket_without_a_connect_is_closed_after_the_timeout(
    short_timeout_broker: tuple[Settings, MqimBroker], behaviour: str
) -> None:
    settings, broker = short_timeout_broker
    async with in_process_victim(settings, broker) as victim_check:
        loop = asyncio.get_running_loop()
        async with raw_connection(settings) as raw:
            started = loop.time()
            if behaviour == "slow CONNECT":  # slowloris: a byte every 0.2 s, never finished
                with contextlib.suppress(ConnectionError):
                    for byte in connect_packet("slow", "slow", "secret-slow")[:10]:
                        await raw.send(bytes([byte]))
                        await asyncio.sleep(0.2)
            assert await raw.received_until_closed() == b""
            elapsed = loop.time() - started
        assert SHORT_CONNECT_TIMEOUT * 0.9 <= elapsed <= SHORT_CONNECT_TIMEOUT + 2.0
        await victim_check()


async def test_the_connect_timeout_does_not_cut_a_prompt_connect(
    short_timeout_broker: tuple[Settings, MqimBroker],
) -> None:
    settings, _ = short_timeout_broker
    async with raw_connection(settings) as raw:
        await raw.send(connect_packet("prompt", "prompt", "secret-prompt"))
        assert await raw.read(4) == CONNACK_ACCEPTED
        await asyncio.sleep(SHORT_CONNECT_TIMEOUT * 1.5)
        await raw.send(b"\xc0\x00")  # PINGREQ
        assert await raw.read(2) == b"\xd0\x00"  # PINGRESP


@pytest.mark.parametrize("then", ["EOF", "a reserved packet"])
async def test_a_connection_that_ends_right_after_connect_leaves_no_connected_session(
    short_timeout_broker: tuple[Settings, MqimBroker], then: str
) -> None:
    settings, broker = short_timeout_broker
    client_ids = [unique_id("gone") for _ in range(20)]
    for client_id in client_ids:  # in one go: the end comes before amqtt waits for it
        async with raw_connection(settings) as raw:
            await raw.send(connect_packet(client_id, client_id, f"secret-{client_id}"))
            if then == "EOF":
                raw.writer.write_eof()
            else:
                await raw.send(b"\x00\x00")
            assert await raw.received_until_closed() == CONNACK_ACCEPTED
    def still_connected() -> list[str]:
        return [c for c in client_ids if c in broker.sessions
                and broker.sessions[c][0].transitions.state == "connected"]

    async with asyncio.timeout(5):
        while still_connected():  # noqa: ASYNC110  # the broker offers no event for this
            await asyncio.sleep(0.05)


async def test_a_client_that_reads_nothing_still_gets_its_socket_closed(
    short_timeout_broker: tuple[Settings, MqimBroker],
) -> None:
    settings, broker = short_timeout_broker
    client_id = unique_id("hog")
    topic = f"{settings.topic_prefix}/u/{client_id}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (settings.mqtt.host, settings.mqtt.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    raw = Raw(reader, writer)
    try:
        async with in_process_victim(settings, broker) as victim_check:
            await raw.send(connect_packet(client_id, client_id, f"secret-{client_id}"))
            assert await raw.read(4) == CONNACK_ACCEPTED
            await raw.send(packet(0x82, b"\x00\x01" + string(topic) + b"\x00"))
            assert await raw.read(5) == b"\x90\x03\x00\x01\x00"  # SUBACK, QoS 0
            for _ in range(32):  # far more than the socket buffers hold: the broker's writes wait
                await broker.internal_message_broadcast(topic, b"x" * MB, qos=0)
            await asyncio.sleep(1)
            await raw.send(b"\xe0\x00")  # DISCONNECT, while reading nothing
            async with asyncio.timeout(CLOSE_SECONDS + 3):
                while (client_id in broker.sessions  # noqa: ASYNC110  # no event to wait on
                       and broker.sessions[client_id][0].transitions.state == "connected"):
                    await asyncio.sleep(0.05)
            # amqtt's close drains first, waits for this reader, is cancelled when the session
            # ends, and never closes the socket: reading now would get the data, then nothing.
            await asyncio.sleep(CLOSE_SECONDS + 0.5)
            await raw.received_until_closed(timeout=10)
            await victim_check()
    finally:
        writer.transport.abort()


async def test_sockets_closed_before_connect_release_their_file_descriptors(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    server = psutil.Process(embedded_server.process.pid)
    settings = embedded_server.settings
    partial_connect = connect_packet("x", "x", "x")[:7]

    async def one(i: int) -> None:
        _, writer = await asyncio.open_connection(settings.mqtt.host, settings.mqtt.port)
        try:
            if i % 3 == 1:  # some bytes of a CONNECT, then gone
                writer.write(partial_connect)
                await writer.drain()
            if i % 3 == 2:  # a reset rather than a FIN
                writer.transport.abort()
                return
            await asyncio.sleep(0.01)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async with victim_online(embedded_server, embedded_http) as victim:
        baseline = server.num_fds()
        for batch in range(10):
            await asyncio.gather(*(one(batch * 100 + i) for i in range(100)))
        peak = now = server.num_fds()
        deadline = asyncio.get_running_loop().time() + 10
        while now > baseline + 10 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            now = server.num_fds()
        logger.info("server fds: baseline %d, right after 1,000 sockets %d, settled %d",
                    baseline, peak, now)
        assert now <= baseline + 10, f"fds: baseline {baseline}, after 1,000 sockets {now}"
        await victim.check()


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


# --- protocol versions and client ids -----------------------------------------------------------

@pytest.mark.parametrize(("name", "level", "connack"), [
    (b"MQTT", 5, b"\x20\x03\x00\x84\x00"),  # MQTT 5: reason code 0x84, no properties
    (b"MQIsdp", 3, b"\x20\x02\x00\x01"),  # MQTT 3.1: return code 1
    (b"MQTT", 6, b"\x20\x02\x00\x01"),  # unknown: 3.1.1's answer
], ids=["MQTT 5", "MQTT 3.1", "unknown level 6"])
async def test_an_unsupported_protocol_gets_a_connack_it_can_read_then_the_connection_closes(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, name: bytes, level: int,
    connack: bytes,
) -> None:
    user = await register(embedded_http)
    async with victim_online(embedded_server, embedded_http) as victim:
        async with raw_connection(embedded_server.settings) as raw:
            await raw.send(connect_packet(user.mqtt["client_id"], user.user_id, user.token,
                                          name=name, level=level))
            assert await raw.received_until_closed() == connack
        await victim.check()


async def test_an_mqtt5_client_is_told_its_version_is_unsupported_instead_of_hanging(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    user = await register(embedded_http)

    async def connect_with_mqtt5() -> None:
        async with asyncio.timeout(5), mqtt_session(embedded_server.settings, user,
                                                    protocol=aiomqtt.ProtocolVersion.V5):
            pass

    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        await connect_with_mqtt5()
    rc = refused.value.rc
    assert isinstance(rc, ReasonCode)
    assert rc.value == 0x84


@pytest.mark.parametrize("whose", ["the victim's live one", "a made-up one", "the bridge's"])
async def test_a_client_id_outside_the_users_namespace_is_rejected_as_an_identifier(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, whose: str
) -> None:
    attacker = await register(embedded_http)
    async with victim_online(embedded_server, embedded_http) as victim:
        client_id = {"the victim's live one": victim.account.mqtt["client_id"],
                     "a made-up one": "someone-else:phone",
                     "the bridge's": embedded_server.settings.bridge_username}[whose]
        async with raw_connection(embedded_server.settings) as raw:
            await raw.send(connect_packet(client_id, attacker.user_id, attacker.token))
            assert await raw.received_until_closed() == b"\x20\x02\x00\x02"  # rc 2
        await victim.check()  # still connected, not taken over


async def test_bad_credentials_are_still_not_authorized(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    user = await register(embedded_http)
    async with raw_connection(embedded_server.settings) as raw:
        await raw.send(connect_packet(user.mqtt["client_id"], user.user_id, "not-a-token"))
        assert await raw.received_until_closed() == b"\x20\x02\x00\x05"


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
