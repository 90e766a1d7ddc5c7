"""The embedded broker's packet framing (broker/embedded/framing.py) over a real asyncio
StreamReader fed as a socket would feed it: packets cut whole however the bytes arrive, an
oversized packet refused on its header alone, nothing read past a CONNECT in exact mode."""

from __future__ import annotations

import asyncio

import pytest
from amqtt.adapters import StreamReaderAdapter
from amqtt.mqtt.packet import MQTTFixedHeader

from broker.embedded.framing import PacketReader, ProtocolViolationError


def packet(kind: int, body: bytes, flags: int = 0) -> bytes:
    length, header = len(body), bytearray([kind << 4 | flags])
    while True:
        byte, length = length % 128, length // 128
        header.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


PACKETS = [packet(3, b"\x00\x03a/b" + b"x" * 200, flags=2), packet(4, b"\x00\x07"),
           packet(12, b""), packet(3, b"\x00\x01t" + b"y" * 20_000), packet(14, b"")]


def fed(*chunks: bytes, eof: bool = True) -> StreamReaderAdapter:
    stream = asyncio.StreamReader()
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return StreamReaderAdapter(stream)


def as_bytes(framed: tuple[MQTTFixedHeader, bytes] | None) -> tuple[int, int, bytes]:
    assert framed is not None
    fixed, body = framed
    return fixed.packet_type, fixed.flags, body


@pytest.mark.parametrize("split", [0, 1, 2, 7, 4096], ids=["one chunk", "byte by byte",
                                                          "2 bytes", "7 bytes", "4 KiB"])
async def test_packets_come_out_whole_however_the_bytes_arrive(split: int) -> None:
    wire = b"".join(PACKETS)
    chunks = [wire] if not split else [wire[i:i + split] for i in range(0, len(wire), split)]
    reader = PacketReader(fed(*chunks))
    got = []
    while (framed := reader.take() or await reader.next()) is not None:
        got.append(as_bytes(framed))
    assert got == [(3, 2, b"\x00\x03a/b" + b"x" * 200), (4, 0, b"\x00\x07"), (12, 0, b""),
                   (3, 0, b"\x00\x01t" + b"y" * 20_000), (14, 0, b"")]


async def test_buffered_packets_need_no_read() -> None:
    reader = PacketReader(fed(b"".join(PACKETS[:3]), eof=False))
    assert reader.take() is None  # nothing read yet
    assert as_bytes(await reader.next())[0] == 3
    # The rest came with the same read: no wait for the socket (which would never answer).
    assert as_bytes(reader.take())[0] == 4
    assert as_bytes(reader.take())[0] == 12
    assert reader.take() is None


async def test_an_oversized_packet_is_refused_on_its_header_alone() -> None:
    header = packet(3, b"\x00" * 2000)[:3]  # the announced length, and no body at all
    reader = PacketReader(fed(header, eof=False), max_bytes=1000)
    with pytest.raises(ProtocolViolationError, match="over the limit of 1000"):
        await asyncio.wait_for(reader.next(), 5)


async def test_a_fifth_remaining_length_byte_is_refused() -> None:
    reader = PacketReader(fed(b"\x30\xff\xff\xff\xff\x01"))
    with pytest.raises(ProtocolViolationError, match="more than 4 bytes"):
        await reader.next()


@pytest.mark.parametrize("cut", [1, 2, 5], ids=["in the header", "after the header",
                                                "in the body"])
async def test_the_end_of_the_connection_inside_a_packet_is_its_end(cut: int) -> None:
    reader = PacketReader(fed(PACKETS[0][:cut]))
    assert await reader.next() is None


async def test_exact_mode_leaves_what_follows_in_the_stream() -> None:
    adapter = fed(PACKETS[1] + PACKETS[2], eof=False)
    assert as_bytes(await PacketReader(adapter, exact=True).next()) == (4, 0, b"\x00\x07")
    # The next reader (the reader loop's) finds the PINGREQ still there.
    assert as_bytes(await PacketReader(adapter).next())[0] == 12
