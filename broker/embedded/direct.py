"""The embedded broker's direct paths: a chat message's two hops without amqtt's machinery.

amqtt 0.12.1 spends, per message, a PUBLISH object, an application message, a queue hop to the
session's message loop and a task with its own PUBACK object on the way in; and on the way out a
task, a PUBLISH object, a future and a timer per delivery, waiting for the PUBACK in that task.
For the two hops every chat message takes, `DirectHandler` does the same work in place:

- an uplink (a client's PUBLISH on its uplink topic) is checked against the ACL and queued for
  the in-process bridge by the broker's `UplinkRoute`, then PUBACKed, straight from the reader
  loop (`_uplink_now`), with back-pressure per sender (`_let_the_bridge_keep_up`); the PUBACKs
  of what one read brought go out in one write, when the reader next waits;
- a QoS 0/1 delivery to a TCP client is queued on its connection (`deliver_now`) and written
  with the others of the same broadcast drain in one socket write (`flush`), recorded in the
  session's in-flight table as amqtt records it, and its PUBACK matched when it comes.

Everything else (QoS 2, retain, WebSocket clients, a slow reader, other topics) takes amqtt's
path, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from amqtt.adapters import StreamWriterAdapter
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import OutgoingApplicationMessage, Session

from broker.link.wire_link import remaining_length

logger = logging.getLogger("broker.embedded.wire")

# One client's uplinks waiting for the in-process bridge, past which its socket is not read.
MAX_PENDING_UPLINKS = 256
# A delivery is written at once while the socket's buffer holds less than this; past it, amqtt's
# path waits for the socket to drain (a slow reader).
DIRECT_WRITE_LIMIT = 256 * 1024
# How long a delivery waits for its PUBACK before it is dropped: amqtt's own timeout.
PUBACK_SECONDS = 5.0


class UplinkRoute(Protocol):
    """Where a client's uplinks go straight from its connection (MqimBroker implements it)."""

    async def route(self, session: Session, topic: str, payload: bytes) -> bool:
        """Take an uplink (after the ACL's check); False if it is not one."""
        ...

    async def room(self, topic: str, limit: int, before_waiting: Callable[[], None]) -> None:
        """Return once fewer than `limit` of this topic's sender's uplinks wait for the
        bridge; `before_waiting` runs first if it has to wait."""
        ...


class DirectHandler(BrokerProtocolHandler):
    """amqtt's broker-side protocol handler with the direct paths (see the module docstring);
    MqimProtocolHandler (wire.py) builds on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Deliveries written by deliver_now awaiting their PUBACK: packet id -> when written.
        self._awaiting_puback: dict[int, float] = {}
        self._puback_sweep: asyncio.TimerHandle | None = None
        # The broker's route for a client's uplinks (MqimBroker), if it has one.
        self.uplinks: UplinkRoute | None = None
        # Deliveries on amqtt's path not done yet: later ones wait behind them, in order.
        self._slow_deliveries = 0
        # Deliveries of deliver_now not written yet (flush writes them), and their size.
        self._corked: list[bytes] = []
        self._corked_bytes = 0

    async def _uplink_now(self, session: Session, flags: int, body: bytes) -> str | None:
        """A QoS 0/1 PUBLISH on an uplink topic, handed to the broker's route and PUBACKed here;
        None if amqtt's path must take it (QoS 2, retain, another topic). amqtt would build a
        PUBLISH object and an application message, queue it for the session's message loop,
        wake that loop, and PUBACK it through its own task and PUBACK object. Returns the topic
        when taken. The caller has checked the PUBLISH (wire.py's _check_publish)."""
        qos, writer, uplinks = (flags >> 1) & 0x03, self.writer, self.uplinks
        if qos == 2 or flags & 0x01 or uplinks is None or writer is None:
            return None
        end = 2 + int.from_bytes(body[:2], "big")
        topic = body[2:end].decode("utf-8")
        packet_id = body[end:end + 2] if qos else b""
        if not await uplinks.route(session, topic, body[end + len(packet_id):]):
            return None
        if qos and isinstance(writer, StreamWriterAdapter):
            # Written with what else is queued, when the reader next waits (wire.py).
            self._corked.append(b"\x40\x02" + packet_id)
            self._corked_bytes += 4
        elif qos:
            writer.write(b"\x40\x02" + packet_id)  # WebSocket: amqtt's adapter buffers it
        return topic

    def deliver_now(self, topic: str, data: bytes | bytearray, qos: int) -> bool:
        """Queue a QoS 0 or 1 delivery to a TCP client for `flush`; False if amqtt's path must
        take it (WebSocket, QoS 2, a closed or slow socket). The broker flushes every
        connection it delivered to at the end of each broadcast drain: one socket write for a
        batch's events instead of one each (a system call per delivery was 5% of the embedded
        broker's CPU). amqtt spends a task, a PUBLISH object, a future and a timer on each
        delivery, and waits for its PUBACK in that task; here the message is recorded in the
        session's in-flight table as amqtt does (so a persistent session still gets it again
        after a reconnect) and the PUBACK is matched when it comes (handle_puback).
        Unacknowledged for PUBACK_SECONDS, it is dropped, as amqtt does."""
        session, writer = self.session, self.writer
        if (qos > 1 or self._slow_deliveries or session is None
                or not isinstance(writer, StreamWriterAdapter) or writer.is_closed):
            self.flush()  # what is queued goes before anything amqtt's path writes
            return False
        transport = writer._writer.transport
        if (transport.is_closing()
                or transport.get_write_buffer_size() + self._corked_bytes > DIRECT_WRITE_LIMIT):
            self.flush()
            return False
        name = topic.encode()
        head = len(name).to_bytes(2, "big") + name
        if qos:
            packet_id = session.next_packet_id
            session.inflight_out[packet_id] = OutgoingApplicationMessage(
                packet_id, topic, qos, data, False)
            self._awaiting_puback[packet_id] = self._loop.time()
            if self._puback_sweep is None:
                self._puback_sweep = self._loop.call_later(PUBACK_SECONDS, self._sweep)
            head += packet_id.to_bytes(2, "big")
        packet = bytes((0x30 | qos << 1,)) + remaining_length(len(head) + len(data)) + head + data
        self._corked.append(packet)
        self._corked_bytes += len(packet)
        return True

    def flush(self) -> None:
        """Write the deliveries deliver_now queued, in one write (dropped if the connection has
        closed meanwhile: those at QoS 1 stay in the session's in-flight table)."""
        if not self._corked:
            return
        data = b"".join(self._corked)
        self._corked.clear()
        self._corked_bytes = 0
        writer = self.writer
        if isinstance(writer, StreamWriterAdapter) and not writer.is_closed:
            writer.write(data)

    def delivering_slowly(self, delivery: asyncio.Task[Any]) -> None:
        """A delivery deliver_now declined, on amqtt's path: until it is done, the next ones
        take that path too, so that none overtakes it (a slow reader's socket, once drained,
        would otherwise get a later message first)."""
        self._slow_deliveries += 1
        delivery.add_done_callback(self._slow_delivery_done)

    def _slow_delivery_done(self, _: asyncio.Task[Any]) -> None:
        self._slow_deliveries -= 1

    def _acknowledged(self, packet_id: int) -> bool:
        """A PUBACK for a delivery of deliver_now: forget it."""
        if self._awaiting_puback.pop(packet_id, None) is None:
            return False
        if self.session is not None:
            self.session.inflight_out.pop(packet_id, None)
        return True

    def _sweep(self) -> None:
        """Drop the deliveries unacknowledged for PUBACK_SECONDS (oldest first: the dict keeps
        the order they were written in)."""
        self._puback_sweep = None
        cutoff = self._loop.time() - PUBACK_SECONDS
        expired = [pid for pid, sent in self._awaiting_puback.items() if sent <= cutoff]
        for packet_id in expired:
            self._acknowledged(packet_id)
        if expired and self.session is not None:
            logger.warning("%s: no PUBACK for %d message(s) in %.0f s: dropped them",
                           self.session.client_id, len(expired), PUBACK_SECONDS)
        if self._awaiting_puback:
            self._puback_sweep = self._loop.call_later(PUBACK_SECONDS, self._sweep)

    async def handle_puback(self, puback: PubackPacket) -> None:
        if puback.variable_header is None or not self._acknowledged(puback.packet_id):
            await super().handle_puback(puback)

    async def _let_the_bridge_keep_up(self, uplinks: UplinkRoute, topic: str) -> None:
        """As _let_the_broker_keep_up, for uplinks taken by _uplink_now: stop reading this
        client while MAX_PENDING_UPLINKS of its uplinks wait for the bridge, so that a burst
        waits in TCP instead of filling (and past its bound, being dropped from) the queue.
        Its PUBACKs so far are written before the wait."""
        await asyncio.sleep(0)  # the other clients' turn, as after every packet
        await uplinks.room(topic, MAX_PENDING_UPLINKS, self.flush)

    def _stop_sweep(self) -> None:
        if self._puback_sweep is not None:
            self._puback_sweep.cancel()
            self._puback_sweep = None
