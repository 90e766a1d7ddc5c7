"""Hand-built MQTT packets on real sockets, and the victim whose sends must stay unaffected:
the tools of the hostile MQTT suites (test_mqtt_connect.py, test_mqtt_packets.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt
import httpx

from broker.acl import ExtraRule
from broker.embedded.broker import MqimBroker
from config import Settings
from tests.helpers import (
    Account,
    barrier,
    create_group,
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

    async def receives(self, user_id: str, thread_id: str) -> bool:
        return False

    async def rules_for(self, user_id: str) -> Sequence[ExtraRule]:
        return ()


SHORT_CONNECT_TIMEOUT = 1.0




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


