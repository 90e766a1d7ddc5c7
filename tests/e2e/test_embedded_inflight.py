"""QoS 1 deliveries of the embedded broker's direct path (broker/embedded/direct.py
`deliver_now`): a persistent session gets those not acknowledged yet again when it reconnects
(MQTT-4.4.0-1), and once acknowledged, never again; a reader too slow for the direct path still
gets every message, in order. The client here is hand-built, so that the test decides when, and
whether, it reads and a PUBACK goes out."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx

from broker.link.wire_link import connect_packet
from contract.topics import TopicScheme
from tests.helpers import (
    Account,
    barrier,
    create_group,
    mqtt_session,
    register,
    send_command,
)
from tests.stacks import Stack


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, stack: Stack, account: Account, *, small_window: bool = False
                      ) -> tuple[RawClient, int]:
        """Connected on a persistent session; returns the CONNACK's session-present flag.
        With `small_window`, the socket and the reader hold only a few KB unread."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_window:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(
            sock, (stack.settings.mqtt.host, stack.settings.mqtt.port))
        reader, writer = await asyncio.open_connection(sock=sock,
                                                       limit=4096 if small_window else 2**16)
        client = cls(reader, writer)
        writer.write(connect_packet(account.mqtt["client_id"], account.mqtt["username"],
                                    account.mqtt["password"], clean_session=False))
        first, body = await client.packet()
        assert (first, body[1]) == (0x20, 0), body
        return client, body[0] & 1

    async def packet(self) -> tuple[int, bytes]:
        async with asyncio.timeout(10):
            first = (await self.reader.readexactly(1))[0]
            size, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                size |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            return first, await self.reader.readexactly(size)

    async def subscribe(self, topic: str) -> None:
        name = topic.encode()
        body = b"\x00\x01" + len(name).to_bytes(2, "big") + name + b"\x01"
        self.writer.write(bytes((0x82, len(body))) + body)
        first, suback = await self.packet()
        assert (first, suback[2:]) == (0x90, b"\x01"), suback

    async def publish(self) -> tuple[int, int, dict[str, object]]:
        """The next PUBLISH: its QoS, packet id and JSON payload (nothing acknowledged)."""
        while True:
            first, body = await self.packet()
            if first >> 4 == 3:
                break
        qos = (first >> 1) & 3
        end = 2 + int.from_bytes(body[:2], "big")
        packet_id = int.from_bytes(body[end:end + 2], "big") if qos else 0
        return qos, packet_id, json.loads(body[end + (2 if qos else 0):])

    def puback(self, packet_id: int) -> None:
        self.writer.write(b"\x40\x02" + packet_id.to_bytes(2, "big"))

    def drop(self) -> None:
        self.writer.transport.abort()

    async def disconnect(self) -> None:
        self.writer.write(b"\xe0\x00")
        await self.writer.drain()
        self.writer.close()


async def _send(http: httpx.AsyncClient, sender: Account, thread_id: str, body: str) -> None:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=sender.auth,
                               json={"body": body})
    assert response.status_code == 201, response.text


async def test_an_unacknowledged_delivery_comes_again_to_its_persistent_session(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    alice, bob = await register(embedded_http), await register(embedded_http)
    thread_id = await create_group(embedded_http, bob, alice)
    topic = TopicScheme(embedded_server.settings.topic_prefix).thread(thread_id)

    client, _ = await RawClient.connect(embedded_server, alice)
    await client.subscribe(topic)
    await _send(embedded_http, bob, thread_id, "first")
    qos, packet_id, event = await client.publish()
    assert (qos, event["type"], event["body"]) == (1, "message", "first")
    client.drop()  # no PUBACK: the delivery stays in flight for the session

    again, present = await RawClient.connect(embedded_server, alice)
    assert present == 1
    qos, packet_id, event = await again.publish()
    assert (qos, event["type"], event["body"]) == (1, "message", "first")
    again.puback(packet_id)
    await _send(embedded_http, bob, thread_id, "second")
    qos, packet_id, event = await again.publish()
    assert event["body"] == "second"
    again.puback(packet_id)
    await again.disconnect()

    # Both were acknowledged: the next connection of the session gets nothing again.
    last, present = await RawClient.connect(embedded_server, alice)
    assert present == 1
    await _send(embedded_http, bob, thread_id, "third")
    _, packet_id, event = await last.publish()
    assert event["body"] == "third"
    last.puback(packet_id)
    await last.disconnect()


async def test_a_reader_too_slow_for_the_direct_path_gets_every_message_in_order(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    """Alice reads nothing while Bob sends ~6.5 MB: once the kernel's buffers are full and her
    connection holds more than DIRECT_WRITE_LIMIT unsent, deliveries take amqtt's path, behind
    those already queued on the direct one. She then gets every message once, in order."""
    alice, bob = await register(embedded_http), await register(embedded_http)
    thread_id = await create_group(embedded_http, bob, alice)
    settings = embedded_server.settings
    topic = TopicScheme(settings.topic_prefix).thread(thread_id)
    client, _ = await RawClient.connect(embedded_server, alice, small_window=True)
    await client.subscribe(topic)
    count, filler = 800, "x" * 7900
    async with mqtt_session(settings, bob) as sender:
        await sender.subscribe(f"{settings.topic_prefix}/u/{bob.user_id}", qos=1)
        for i in range(count):
            await sender.publish(f"{settings.topic_prefix}/up/{bob.user_id}",
                                 send_command(thread_id, f"slow-{i}", f"{i}:{filler}"), qos=1)
        await barrier(sender, settings, bob, [])  # all stored and published: none read yet
    bodies = []
    for _ in range(count):
        qos, packet_id, event = await client.publish()
        assert qos == 1
        client.puback(packet_id)
        bodies.append(str(event["body"]).split(":", 1)[0])
    assert bodies == [str(i) for i in range(count)]
    await client.disconnect()
