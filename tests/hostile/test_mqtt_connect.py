"""Hostile MQTT clients at CONNECT, against the embedded broker: sockets that never send a
CONNECT, that close before it, that send it too slowly or read nothing; other protocol versions
and client ids outside the user's namespace. Each attack also checks that a victim connected
throughout is unaffected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiomqtt
import httpx
import psutil
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from broker.embedded.broker import MqimBroker
from broker.embedded.closing import CLOSE_SECONDS
from config import Settings
from tests.helpers import (
    mqtt_session,
    register,
    unique_id,
)
from tests.hostile.mqtt_raw import (
    CONNACK_ACCEPTED,
    MB,
    SHORT_CONNECT_TIMEOUT,
    Raw,
    connect_packet,
    in_process_victim,
    packet,
    raw_connection,
    string,
    victim_online,
)
from tests.stacks import Stack

logger = logging.getLogger(__name__)


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


