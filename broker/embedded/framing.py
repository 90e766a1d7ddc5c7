"""Whole MQTT packets out of a connection's bytes, for the embedded broker's reader loop (wire.py).

    packets = PacketReader(reader)            # the reader loop: buffered
    framed = packets.take() or await packets.next()
    framed = await PacketReader(reader, exact=True).next()   # CONNECT: reads no byte past it

A packet is cut from the bytes read so far; the socket is read only when the buffer holds no
whole packet, up to CHUNK bytes at a time. Reading each packet with three or more
`readexactly` calls (its first byte, each remaining-length byte, its body), as amqtt does, was
the embedded broker's largest cost per message. A packet whose header announces more than
`max_bytes` is refused as soon as that header is in the buffer, before its body is read, and
the buffer never holds more than one packet and one CHUNK.

`exact` reads only the bytes the packet still needs, through the amqtt adapter: what follows
the CONNECT stays in the socket's stream for the reader loop. WebSocket connections are read
that way too (their adapter has no "whatever is there" read).
"""

from __future__ import annotations

import asyncio

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter
from amqtt.errors import AMQTTError
from amqtt.mqtt.packet import MQTTFixedHeader

# Largest packet accepted, fixed header included: the same bound as mosquitto.conf's
# max_packet_size 1048576. A bigger one closes the connection before its body is read.
MAX_PACKET_BYTES = 1024 * 1024
# Bytes asked of the socket at a time: what the kernel has, up to this.
CHUNK = 64 * 1024


class ProtocolViolationError(AMQTTError):
    """A packet MQTT 3.1.1 (or our size bound) forbids: the connection is closed.

    An AMQTTError, so that amqtt's connection handling treats it as a failed connection."""


class PacketReader:
    def __init__(self, reader: ReaderAdapter, max_bytes: int = MAX_PACKET_BYTES, *,
                 exact: bool = False) -> None:
        self._adapter = reader
        # amqtt's TCP adapter wraps an asyncio StreamReader (a pinned amqtt, CONTRIBUTING.md).
        self._stream = (reader._reader
                        if not exact and isinstance(reader, StreamReaderAdapter) else None)
        self._max = max_bytes
        self._buffer = bytearray()
        self._start = 0  # where the next packet begins in _buffer

    def take(self) -> tuple[MQTTFixedHeader, bytes] | None:
        """The next packet if the buffer holds all of it; None if the socket must be read.
        Raises ProtocolViolationError for a malformed remaining length or an oversized packet."""
        framed = self._cut()
        return framed if isinstance(framed, tuple) else None

    async def next(self) -> tuple[MQTTFixedHeader, bytes] | None:
        """The next whole packet, reading the socket as needed; None when the connection ends,
        between packets or inside one."""
        while True:
            framed = self._cut()
            if isinstance(framed, tuple):
                return framed
            if not await self._fill(framed):
                return None

    def _cut(self) -> tuple[MQTTFixedHeader, bytes] | int:
        """The next packet, or how many more bytes are needed at least to go on."""
        data, start = self._buffer, self._start
        available = len(data) - start
        if available < 2:
            return 2 - available
        length, multiplier, header_bytes = 0, 1, 1
        while True:
            if header_bytes == available:
                return 1
            byte = data[start + header_bytes]
            header_bytes += 1
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                break
            if header_bytes == 5:
                raise ProtocolViolationError("malformed remaining length (more than 4 bytes)")
            multiplier *= 128
        end = header_bytes + length
        if end > self._max:
            raise ProtocolViolationError(
                f"packet of {end} bytes announced, over the limit of {self._max}")
        if available < end:
            return end - available
        first = data[start]
        body = bytes(data[start + header_bytes:start + end])
        if available == end:
            data.clear()
            self._start = 0
        else:
            self._start = start + end
        return MQTTFixedHeader(first >> 4, first & 0x0F, length), body

    async def _fill(self, needed: int) -> bool:
        """Read more (at least one byte); False at the end of the connection."""
        if self._start:
            del self._buffer[:self._start]
            self._start = 0
        try:
            if self._stream is not None:
                chunk = await self._stream.read(max(needed, CHUNK))
            else:
                chunk = await self._adapter.read(needed)
        except asyncio.IncompleteReadError as exc:
            chunk = exc.partial
        except OSError:  # reset by the peer
            chunk = b""
        if not chunk:
            return False
        self._buffer += chunk
        return len(chunk) >= needed or self._stream is not None
