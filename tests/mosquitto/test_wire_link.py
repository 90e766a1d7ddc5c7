"""The bridge's own MQTT link (broker/link/wire_link.py) against a real Mosquitto, and against
a peer that breaks the protocol. Every Mosquitto-mode test of the server runs through it too;
these pin what the bridge relies on: uplinks in order with their packet ids, nothing PUBACKed
until the bridge says so (Mosquitto sends an unacknowledged uplink again to the session), events
out in order, and a clear error for a refused login or a broken peer."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from broker.errors import BrokerUnavailableError
from broker.link.client import ServiceEndpoint
from broker.link.wire_link import LinkClosedError, WireLink
from broker.mosquitto.control import MosquittoControl
from contract.events import TypingEvent
from tests.mosquitto.conftest import MosquittoBroker


def _endpoint(broker: MosquittoBroker, password: str | None = None) -> ServiceEndpoint:
    return ServiceEndpoint(broker.host, broker.port, broker.service_user,
                           password if password is not None else broker.service_password)


async def test_uplinks_arrive_in_order_and_come_again_until_acknowledged(
    mosquitto: MosquittoBroker, control: MosquittoControl,
) -> None:
    user = f"wl{uuid.uuid4().hex[:8]}"
    client_id = f"{mosquitto.service_user}:{uuid.uuid4().hex[:8]}"
    topic = f"{mosquitto.prefix}/up/{user}"
    async with WireLink(_endpoint(mosquitto), client_id, clean_session=False) as link:
        await link.subscribe(topic, qos=1)
        async with mosquitto.user_client(user) as sender:
            for n in range(20):
                await sender.publish(topic, f"m{n}".encode(), qos=1)
        async with asyncio.timeout(5):
            received = [await link.next_message() for _ in range(20)]
        assert [m.payload for m in received] == [f"m{n}".encode() for n in range(20)]
        assert {(m.topic, m.qos) for m in received} == {(topic, 1)}
        for message in received[:10]:
            link.ack(message.mid, message.qos)
        await asyncio.sleep(0.2)  # the PUBACKs leave with the loop's next turn
    # The same session again: Mosquitto sends the 10 that were never acknowledged.
    async with WireLink(_endpoint(mosquitto), client_id, clean_session=False) as again:
        async with asyncio.timeout(5):
            resent = [await again.next_message() for _ in range(10)]
        assert [m.payload for m in resent] == [f"m{n}".encode() for n in range(10, 20)]
        for message in resent:
            again.ack(message.mid, message.qos)
    async with WireLink(_endpoint(mosquitto), client_id, clean_session=True):
        pass  # ends the persistent session


async def test_published_events_arrive_in_order(mosquitto: MosquittoBroker) -> None:
    thread_topic = f"{mosquitto.prefix}/t/wl{uuid.uuid4().hex[:8]}"
    async with mosquitto.service_client() as watcher, \
            WireLink(_endpoint(mosquitto), f"{mosquitto.service_user}:{uuid.uuid4().hex[:8]}",
                     clean_session=True) as link:
        await watcher.subscribe(thread_topic, qos=1)
        events = [(thread_topic, TypingEvent.model_validate(
            {"type": "typ", "thread_id": "t", "from": f"u{n}", "is_typing": True}))
                  for n in range(50)]
        await link.publish_all(events)
        got: list[str] = []
        async with asyncio.timeout(5):
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                got.append(message.payload.decode())
                if len(got) == 50:
                    break
    assert [f'"from":"u{n}"' in body for n, body in enumerate(got)] == [True] * 50


async def test_a_refused_login_says_why(mosquitto: MosquittoBroker) -> None:
    with pytest.raises(BrokerUnavailableError, match="refused"):
        async with WireLink(_endpoint(mosquitto, "wrong"), f"{mosquitto.service_user}:x",
                            clean_session=True):
            pass


@pytest.mark.parametrize("garbage", [
    b"\x20\x02\x00\x00" + b"\x30\xff\xff\xff\xff\x7f",  # CONNACK, then a 5-byte length
    b"\x20\x02\x00\x00" + b"\x70\x00",  # CONNACK, then a packet a broker never sends
])
async def test_a_peer_breaking_the_protocol_ends_the_link(garbage: bytes) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1024)  # the CONNECT
            writer.write(garbage)
            await writer.drain()
            await reader.read()  # until the link hangs up
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        link = WireLink(ServiceEndpoint("127.0.0.1", port, "u", "p"), "c", clean_session=True)
        async with link:
            with pytest.raises(LinkClosedError):
                async with asyncio.timeout(5):
                    await link.next_message()
