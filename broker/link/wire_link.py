"""The bridge's service connection: MQTT 3.1.1 on the event loop, without a client library.

The bridge's hops are its hot path. paho-mqtt (what aiomqtt wraps) builds several Python
objects per packet (a message, its info with a threading.Condition, properties, reason codes),
runs its network loop in a thread that takes the GIL from the event loop, and writes every
packet with a syscall of its own. This link is an `asyncio.Protocol`: it parses packets from the
bytes the loop hands it, queues received uplinks for the bridge, and coalesces everything
written in one turn of the loop (a batch's events, then its PUBACKs) into one socket write.

It speaks what a service link needs and nothing more: CONNECT with a password, SUBSCRIBE,
PUBLISH in and out at QoS 0 or 1, PUBACK (sent only when the bridge says so, after its batch
committed), and PINGREQ for the keep-alive. Order is the connection's: a batch's events are
written before the PUBACKs of its uplinks, and the broker handles a connection's packets in
order, so its events are out before its uplinks are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, cast

from broker.errors import BrokerUnavailableError
from broker.link.client import ServiceEndpoint
from broker.link.publisher import Event, encode_event

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
KEEPALIVE = 30
# Publishes the broker has not acknowledged yet, past which publish_all waits (back-pressure).
MAX_UNACKED = 5000
# A packet from the broker larger than this ends the connection (Mosquitto sends at most its
# max_packet_size, 1 MiB in mosquitto.conf).
MAX_PACKET_BYTES = 16 * 1024 * 1024

_CONNACK, _PUBLISH, _PUBACK, _SUBACK, _PINGRESP = 2, 3, 4, 9, 13
_CONNACK_REASONS = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
}
_PINGREQ = b"\xc0\x00"
_MID = struct.Struct("!H")


class LinkClosedError(BrokerUnavailableError):
    """The connection ended (the broker went away, or the link was closed)."""


class Uplink(NamedTuple):
    """A PUBLISH the broker delivered (the shape of broker.link.uplinks.Received)."""

    topic: str
    payload: bytes
    mid: int
    qos: int


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length encoding of a packet's remaining length (MQTT 2.2.3)."""
    if n < 0x4000:  # one or two bytes: every chat event (the loop below was 2% of the CPU)
        return bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode()
    return _MID.pack(len(raw)) + raw


def connect_packet(client_id: str, username: str, password: str, *, clean_session: bool,
                   keepalive: int = KEEPALIVE) -> bytes:
    flags = 0x80 | 0x40 | (0x02 if clean_session else 0)
    body = (_string("MQTT") + bytes((4, flags)) + _MID.pack(keepalive)
            + _string(client_id) + _string(username) + _string(password))
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int, mid: int) -> bytes:
    head = _string(topic)
    if qos:
        head += _MID.pack(mid)
    return (bytes((0x30 | (qos << 1),)) + remaining_length(len(head) + len(payload))
            + head + payload)


class WireLink(asyncio.Protocol):
    """`async with WireLink(endpoint, client_id, clean_session=...) as link:` then `subscribe`,
    `next_message`, `take_ready`, `publish_all`, `ack`. Not reusable after it closes: make a new
    one to reconnect."""

    def __init__(self, endpoint: ServiceEndpoint, client_id: str, *, clean_session: bool) -> None:
        self._endpoint = endpoint
        self._client_id = client_id
        self._clean_session = clean_session
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._rest = b""  # the start of a packet whose end has not arrived yet
        self._inbox: deque[Uplink] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._out: list[bytes] = []  # written this turn of the loop, flushed at its end
        self._next_mid = 0
        self._unacked: set[int] = set()  # our QoS 1 publishes awaiting the broker's PUBACK
        self._drained: asyncio.Future[None] | None = None  # back-pressure: unacked or socket
        self._paused = False  # the transport's buffer is full (pause_writing)
        self._pending: dict[int, asyncio.Future[None]] = {}  # subscribes, by packet id
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._closed: str | None = None
        self._heard = True  # a packet arrived since the last keep-alive tick
        self._keepalive: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(connect_packet(
            self._client_id, self._endpoint.username, self._endpoint.password,
            clean_session=self._clean_session))
        self._keepalive = self._loop.call_later(KEEPALIVE, self._tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"connection lost: {exc}" if exc else "the broker closed the connection")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        self._heard = True
        if self._rest:
            data = self._rest + data
        end, size, pos = len(data), 0, 0
        while end - pos >= 2:
            # Remaining length: 1-4 bytes of 7 bits, least significant first (MQTT 2.2.3).
            size = shift = 0
            i = pos + 1
            while True:
                if i >= end:
                    self._rest = data[pos:]
                    return
                byte = data[i]
                size |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 21:
                    self._abort("a malformed remaining length")
                    return
            if size > MAX_PACKET_BYTES:
                self._abort(f"a packet of {size} bytes")
                return
            if i + size > end:
                break
            self._packet(data[pos], data, i, i + size)
            if self._closed is not None:
                return
            pos = i + size
        self._rest = data[pos:]

    # -- packets from the broker -----------------------------------------------------------

    def _packet(self, first: int, data: bytes, start: int, end: int) -> None:
        kind = first >> 4
        if kind == _PUBLISH:
            qos = (first >> 1) & 3
            topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
            topic = data[start + 2:topic_end].decode()
            mid = 0
            if qos:
                mid = (data[topic_end] << 8) | data[topic_end + 1]
                topic_end += 2
            self._inbox.append(Uplink(topic, data[topic_end:end], mid, qos))
            reader = self._reader
            if reader is not None and not reader.done():
                reader.set_result(None)
        elif kind == _PUBACK:
            self._unacked.discard((data[start] << 8) | data[start + 1])
            if self._drained is not None and len(self._unacked) < MAX_UNACKED:
                self._wake_drain()
        elif kind == _SUBACK:
            future = self._pending.pop((data[start] << 8) | data[start + 1], None)
            if future is not None and not future.done():
                if 0x80 in data[start + 2:end]:
                    future.set_exception(BrokerUnavailableError("subscription refused"))
                else:
                    future.set_result(None)
        elif kind == _CONNACK:
            code = data[start + 1] if end - start >= 2 else -1
            if self._connected.done():
                return
            if code == 0:
                self._connected.set_result(None)
            else:
                reason = _CONNACK_REASONS.get(code, f"code {code}")
                self._connected.set_exception(
                    BrokerUnavailableError(f"connect refused: {reason}"))
                self._abort(f"connect refused: {reason}")
        elif kind != _PINGRESP:
            self._abort(f"an unexpected packet of type {kind}")

    # -- writing ---------------------------------------------------------------------------

    def _write(self, packet: bytes) -> None:
        """Queue a packet; everything queued in this turn of the loop goes out in one write."""
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(packet)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if out and self._transport is not None and self._closed is None:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _tick(self) -> None:
        """Keep-alive: a PINGREQ every KEEPALIVE seconds; a broker that sent nothing at all
        for a whole period after one (not even its PINGRESP) is gone."""
        if not self._heard:
            self._abort(f"no answer from the broker for {KEEPALIVE} s")
            return
        self._heard = False
        self._write(_PINGREQ)
        self._keepalive = self._loop.call_later(KEEPALIVE, self._tick)

    def _wake_drain(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _abort(self, reason: str) -> None:
        logger.warning("closing the link to the broker: %s", reason)
        self._close(reason)
        if self._transport is not None:
            self._transport.abort()

    def _close(self, reason: str) -> None:
        if self._closed is not None:
            return
        self._closed = reason
        if self._keepalive is not None:
            self._keepalive.cancel()
        error = LinkClosedError(reason)
        if not self._connected.done():
            self._connected.set_exception(error)
            self._connected.exception()  # retrieved: __aenter__ may not be waiting any more
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)
        self._wake_drain()

    def _check(self) -> None:
        if self._closed is not None:
            raise LinkClosedError(self._closed)

    def _mid(self) -> int:
        """The next packet id, 1..65535, skipping ids still in flight (at most MAX_UNACKED
        publishes and a subscribe are, so one is free)."""
        mid = self._next_mid
        while True:
            mid = mid % 0xFFFF + 1
            if mid not in self._unacked and mid not in self._pending:
                self._next_mid = mid
                return mid

    async def _writable(self) -> None:
        """Wait while the broker holds MAX_UNACKED of our publishes or the socket's buffer is
        full."""
        while self._paused or len(self._unacked) >= MAX_UNACKED:
            self._drained = self._drained or self._loop.create_future()
            await self._drained
            self._check()

    # -- the bridge's calls ----------------------------------------------------------------

    async def __aenter__(self) -> WireLink:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await self._loop.create_connection(
                    lambda: self, self._endpoint.host, self._endpoint.port)
                await asyncio.shield(self._connected)
        except (OSError, TimeoutError) as exc:
            self._close(str(exc))
            self._stop()
            raise BrokerUnavailableError(
                f"cannot connect to {self._endpoint.host}:{self._endpoint.port}: "
                f"{str(exc) or 'timed out'}") from exc
        except BaseException:
            self._close("connect failed")
            self._stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._flush()
        if self._transport is not None and self._closed is None:
            self._transport.write(b"\xe0\x00")  # DISCONNECT: no will, a clean goodbye
        self._close("closed")
        self._stop()

    def _stop(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        self._check()
        mid = self._mid()
        body = _MID.pack(mid) + _string(topic) + bytes((qos,))
        future = self._loop.create_future()
        self._pending[mid] = future
        self._write(b"\x82" + remaining_length(len(body)) + body)
        await future

    async def publish_all(self, events: Sequence[Event], *, qos: int = 1) -> None:
        """Queue the events on the connection in order (see the module docstring for why that
        is enough); wait only while more than MAX_UNACKED publishes await the broker's PUBACK,
        or while the socket's buffer is full."""
        self._check()
        for topic, event in events:
            mid = 0
            if qos:
                if len(self._unacked) >= MAX_UNACKED:
                    await self._writable()
                mid = self._mid()
                self._unacked.add(mid)
            self._write(publish_packet(topic, encode_event(event), qos, mid))
        if self._paused:
            await self._writable()

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK an uplink (only after its batch committed)."""
        if qos == 1 and self._closed is None:
            self._write(b"\x40\x02" + _MID.pack(mid))

    async def next_message(self) -> Uplink:
        while not self._inbox:
            self._check()
            self._reader = self._loop.create_future()
            await self._reader
        return self._inbox.popleft()

    def take_ready(self, limit: int) -> list[Uplink]:
        """Up to `limit` messages already received, without waiting (group commit)."""
        inbox = self._inbox
        return [inbox.popleft() for _ in range(min(limit, len(inbox)))]
