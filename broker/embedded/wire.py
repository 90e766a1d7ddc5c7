"""MQTT on the wire for the embedded broker: packets framed and checked before amqtt parses them.

amqtt 0.12.1 parses packets straight off the socket, as it reads them, and trusts the client
to behave. What a hostile client could do with that, and the fix here:

- it reads whatever length a fixed header announces (up to 256 MB) into memory -> a packet is
  refused as soon as its header announces more than MAX_PACKET_BYTES
  (broker/embedded/framing.py, which also cuts packets from one buffer instead of reading each
  with several `readexactly` calls);
- a packet it cannot parse (a PUBLISH whose topic holds a wildcard) is dropped halfway, and the
  rest of it is read as the next packets: a PUBLISH hidden in a payload gets executed -> every
  packet is read whole first and parsed from its own bytes, and one that does not parse to
  exactly its length, or that MQTT 3.1.1 forbids, closes the connection (as the spec requires);
- its broker never enforces the keep-alive (MQTT-3.1.2-24) -> MqimProtocolHandler does;
- it closes a connection by draining it first, forever if the peer reads nothing ->
  broker/embedded/closing.py's BoundedStreamWriter resets it after CLOSE_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from amqtt.adapters import ReaderAdapter
from amqtt.errors import AMQTTError, CodecError, MQTTError, NoDataError, ProtocolHandlerError
from amqtt.events import MQTTEvents
from amqtt.mqtt import packet_class
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.packet import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBSCRIBE,
    UNSUBSCRIBE,
    MQTTFixedHeader,
    MQTTPacket,
)
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubcomp import PubcompPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.pubrec import PubrecPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.session import Session

from broker.embedded import observe
from broker.embedded.closing import abort
from broker.embedded.direct import DirectHandler
from broker.embedded.framing import MAX_PACKET_BYTES, PacketReader, ProtocolViolationError
from broker.embedded.keepalive import KeepAlive

logger = logging.getLogger(__name__)

# Received messages of one client waiting for the broker to route them, past which it stops
# reading that client's socket until they have been.
MAX_PENDING_DELIVERIES = 64
# MQTT-3.1.2-24: a client silent for 1.5 times its keep-alive is disconnected.
KEEP_ALIVE_GRACE = 1.5

# The CONNACK an MQTT 5 client can read (MQTT 5.0 s.3.2): session present 0, reason code 0x84
# "unsupported protocol version", empty properties. amqtt answers in 3.1.1's format, which
# MQTT 5 clients cannot parse, so they hang.
MQTT5_CONNACK_UNSUPPORTED = b"\x20\x03\x00\x84\x00"
# MQTT 3.1 (MQIsdp, level 3) reads 3.1.1's CONNACK: return code 1 "unacceptable protocol
# version". amqtt would close without a word, the protocol name being not "MQTT".
MQTT31_CONNACK_UNSUPPORTED = b"\x20\x02\x00\x01"

# Packets a client may send after CONNECT, with the fixed-header flags MQTT 3.1.1 s.2.2.2
# requires of each (PUBLISH's are its own; checked in _check_publish).
_CLIENT_PACKET_FLAGS = {
    PUBACK: 0, PUBREC: 0, PUBREL: 2, PUBCOMP: 0, SUBSCRIBE: 2, UNSUBSCRIBE: 2, PINGREQ: 0,
    DISCONNECT: 0,
}


class PacketBody(ReaderAdapter):
    """The bytes of one packet, read from memory: amqtt's parsers read from here, never from the
    socket, so that no parse can run into the next packet."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def feed_eof(self) -> None:
        """Nothing to do: the end of the packet is the end of the data."""

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos


async def read_packet(
    reader: ReaderAdapter, max_bytes: int = MAX_PACKET_BYTES
) -> tuple[MQTTFixedHeader, bytes] | None:
    """The next whole packet, reading no byte past it (the CONNECT, before amqtt's handler takes
    the connection): its fixed header and its body. None when the connection ends; raises
    ProtocolViolationError for a malformed remaining length, and for a packet over `max_bytes`
    as soon as its header says so, before a byte of its body is read."""
    return await PacketReader(reader, max_bytes, exact=True).next()


def connect_protocol(body: bytes) -> tuple[bytes, int] | None:
    """A CONNECT's protocol name and level (the same place in every MQTT version), or None if
    its body is too short to hold them."""
    if len(body) < 2:
        return None
    size = int.from_bytes(body[:2], "big")
    if len(body) < 2 + size + 1:
        return None
    return body[2:2 + size], body[2 + size]


def _check_publish(flags: int, body: bytes) -> None:
    """What amqtt would trip over in a PUBLISH: its QoS and its topic name (MQTT-3.3.1-4,
    MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-1.5.3-1/2)."""
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolViolationError("PUBLISH with QoS 3")
    size = int.from_bytes(body[:2], "big") if len(body) >= 2 else -1
    if size < 0 or len(body) < 2 + size + (2 if qos else 0):
        raise ProtocolViolationError("PUBLISH shorter than its topic name")
    try:
        topic = body[2:2 + size].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolViolationError("PUBLISH topic name is not UTF-8") from None
    if not topic or "\x00" in topic:
        raise ProtocolViolationError("PUBLISH topic name is empty or holds U+0000")
    if "+" in topic or "#" in topic:
        raise ProtocolViolationError(f"[MQTT-3.3.2-2] wildcard in PUBLISH topic name {topic!r}")


async def parse_client_packet(fixed: MQTTFixedHeader, body: bytes) -> MQTTPacket[Any, Any, Any]:
    """The packet amqtt parses from exactly these bytes; ProtocolViolationError for anything a
    client may not send, or that does not parse to exactly its length."""
    kind = fixed.packet_type
    if kind == PUBLISH:
        _check_publish(fixed.flags, body)
    elif kind not in _CLIENT_PACKET_FLAGS:
        what = "a second CONNECT" if kind == CONNECT else f"packet type {kind}"
        raise ProtocolViolationError(f"{what} from a connected client")
    elif fixed.flags != _CLIENT_PACKET_FLAGS[kind]:
        raise ProtocolViolationError(f"packet type {kind} with reserved flags {fixed.flags:#x}")
    source = PacketBody(body)
    try:
        packet = await packet_class(fixed).from_stream(source, fixed_header=fixed)
    except (AMQTTError, MQTTError, NoDataError, CodecError, ValueError, struct.error) as exc:
        raise ProtocolViolationError(f"malformed packet of type {kind}: {exc}") from exc
    if source.remaining:
        raise ProtocolViolationError(
            f"packet of type {kind} has {source.remaining} bytes more than its fields")
    if isinstance(packet, SubscribePacket):
        requested = packet.payload.topics if packet.payload else []
        if not requested:
            raise ProtocolViolationError("SUBSCRIBE without a topic filter")  # MQTT-3.8.3-3
        if any(qos > 2 for _, qos in requested):
            raise ProtocolViolationError("SUBSCRIBE with a QoS over 2")  # MQTT-3.8.3-4
    if isinstance(packet, UnsubscribePacket) and not (packet.payload and packet.payload.topics):
        raise ProtocolViolationError("UNSUBSCRIBE without a topic filter")  # MQTT-3.10.3-2
    return packet


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.warning("handling a packet failed: %r", exc, exc_info=exc)


class MqimProtocolHandler(DirectHandler):
    """amqtt 0.12.1's broker-side protocol handler, with its reader loop replaced (see the
    module docstring), a chat message's hops taken directly (broker/embedded/direct.py) and its
    disconnect race closed (see wait_disconnect)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # How the connection ended, once it has: (the DISCONNECT packet, or None if it dropped).
        self._ended: tuple[DisconnectPacket | None] | None = None

    async def _reader_loop(self) -> None:
        """Replaces amqtt's: each packet is read whole (bounded by MAX_PACKET_BYTES), checked,
        parsed from its own bytes and handed to amqtt's handle_* methods as amqtt does (a task
        each, in order). Anything malformed or forbidden, or silence past the keep-alive, resets
        the connection; amqtt would discard the packet and parse on mid-stream."""
        session, reader, ready = self.session, self.reader, self._reader_ready
        if session is None or reader is None or ready is None:
            raise ProtocolHandlerError("reader loop started on a detached handler")
        idle = session.keep_alive * KEEP_ALIVE_GRACE if session.keep_alive > 0 else None
        # One loop and task look-up per connection, not per packet (each is a getpid() on 3.11).
        loop, this = asyncio.get_running_loop(), asyncio.current_task()
        if this is None:
            raise ProtocolHandlerError("reader loop started outside a task")
        keep_alive = KeepAlive(loop, this, idle) if idle is not None else None
        running: set[asyncio.Task[None]] = set()
        packets = PacketReader(reader)
        ready.set()
        # Why the connection ends, for its one log line (broker/embedded/observe.py).
        reason, level = "closed by the server", logging.INFO
        try:
            while True:
                # Only a wait for the socket counts as silence (a buffered packet is no wait).
                if (framed := packets.take()) is None:
                    self.flush()  # the PUBACKs of what this read brought, in one write
                    if keep_alive is not None:
                        keep_alive.reading()
                    framed = await packets.next()
                    if keep_alive is not None:
                        keep_alive.read()
                    if framed is None:
                        reason = "closed without DISCONNECT"
                        break
                fixed, body = framed
                if (fixed.packet_type == PUBACK and fixed.flags == 0 and len(body) == 2
                        and self._acknowledged(int.from_bytes(body, "big"))):
                    continue  # the PUBACK of a deliver_now delivery: nothing else to do
                if fixed.packet_type == PUBLISH and self.uplinks is not None:
                    _check_publish(fixed.flags, body)  # a malformed one ends the connection
                    if uplink := await self._uplink_now(session, fixed.flags, body):
                        await self._let_the_bridge_keep_up(self.uplinks, uplink)
                        continue
                packet = await parse_client_packet(fixed, body)
                await self.plugins_manager.fire_event(
                    MQTTEvents.PACKET_RECEIVED, packet=packet, session=session)
                if isinstance(packet, DisconnectPacket):
                    # Handled here, not in a task that the end of this loop would cancel.
                    reason = "DISCONNECT"
                    await self.handle_disconnect(packet)
                    break
                task = loop.create_task(self._handle_packet(packet))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(_log_failure)
                await self._let_the_broker_keep_up(session)
        except asyncio.CancelledError:
            if keep_alive is not None and keep_alive.expired():
                reason = f"nothing received for {idle:.0f} s (1.5 x its keep-alive)"
                abort(self.writer)
            else:
                logger.debug("%s: reader loop cancelled", session.client_id)
        except ProtocolViolationError as exc:
            reason, level = f"protocol violation: {exc}", logging.WARNING
            abort(self.writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            reason = f"connection lost: {exc!r}"  # a client's network, not our bug
            abort(self.writer)
        except Exception:
            logger.warning("%s: error reading its packets: closing the connection",
                           session.client_id, exc_info=True)
            reason, level = "read error", logging.WARNING
            abort(self.writer)
        finally:
            if keep_alive is not None:
                keep_alive.close()
            self._stop_sweep()
        observe.disconnected(session.username, session.client_id, reason, level=level)
        if running:
            await asyncio.sleep(0)  # packets already read get their turn, as on a live connection
            for pending in list(running):
                pending.cancel()
        await self.handle_connection_closed()
        self._reader_stopped.set()
        await self.stop()

    @staticmethod
    async def _let_the_broker_keep_up(session: Session) -> None:
        """Give the broker's loop its turn after each packet, and stop reading while this
        client's received messages wait for it: otherwise a client sending faster than the
        broker routes fills `delivered_message_queue` (unbounded) with no limit. amqtt's loop
        happened to yield once a packet (its `asyncio.wait_for`), enough in practice; the wait
        bounds it, and TCP pushes back on the client."""
        await asyncio.sleep(0)
        while session.delivered_message_queue.qsize() >= MAX_PENDING_DELIVERIES:  # noqa: ASYNC110
            await asyncio.sleep(0.001)  # amqtt's queue offers nothing to wait on

    async def _handle_packet(self, packet: MQTTPacket[Any, Any, Any]) -> None:
        match packet:
            case PublishPacket():
                await self.handle_publish(packet)
            case PubackPacket():
                await self.handle_puback(packet)
            case PubrecPacket():
                await self.handle_pubrec(packet)
            case PubrelPacket():
                await self.handle_pubrel(packet)
            case PubcompPacket():
                await self.handle_pubcomp(packet)
            case SubscribePacket():
                await self.handle_subscribe(packet)
            case UnsubscribePacket():
                await self.handle_unsubscribe(packet)
            case PingReqPacket():
                await self.handle_pingreq(packet)
            case _:
                raise ProtocolHandlerError(f"unexpected packet {packet!r}")

    async def handle_disconnect(self, disconnect: DisconnectPacket | None) -> None:
        if self._ended is None:
            self._ended = (disconnect,)
        await super().handle_disconnect(disconnect)

    async def wait_disconnect(self) -> DisconnectPacket | None:
        """amqtt creates the future this waits on only after start() has run the reader task;
        a connection that ended meanwhile (a client that sends CONNECT and closes at once) was
        then never seen to end, and its session stayed "connected" forever."""
        if self._ended is not None:
            return self._ended[0]
        return await super().wait_disconnect()
