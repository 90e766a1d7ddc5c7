"""Closing the embedded broker's client connections so that it cannot hang.

amqtt closes a connection by draining it first: forever, if the peer reads nothing. Its writer
is closed on the way to ending a session (disconnect, refusal, kick, take-over), which then
never ends. These close with a bound, and reset what does not close in time.
"""

from __future__ import annotations

import asyncio
import logging

from amqtt.adapters import StreamWriterAdapter, WebSocketsWriter, WriterAdapter

logger = logging.getLogger("broker.embedded.wire")

# How long closing a connection may take to flush (a peer that reads nothing) before it is reset.
CLOSE_SECONDS = 2.0


def abort(writer: WriterAdapter | None) -> None:
    """Drop a connection at once (a TCP reset), without flushing: for a peer breaking the
    protocol, which may be sending more and reading nothing."""
    if isinstance(writer, StreamWriterAdapter):
        writer.is_closed = True  # amqtt's own flag: its write(), drain() and close() now skip
        writer._writer.transport.abort()
    elif isinstance(writer, WebSocketsWriter):
        writer._protocol.transport.abort()


class BoundedStreamWriter(StreamWriterAdapter):
    """amqtt's TCP writer, with a close() that cannot hang. amqtt's drains first: on a peer that
    reads nothing, once its buffers are full, that waits forever, and amqtt closes a client's
    writer on the way to ending its session (disconnect, refusal, kick, take-over), which then
    never ends: the socket and the session stay."""

    async def close(self) -> None:
        closed = False
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await super().close()
            closed = True
        except (TimeoutError, OSError) as exc:
            logger.debug("closing a connection failed (%r): resetting it", exc)
        finally:
            if not closed:
                self._writer.transport.abort()


def _transport_open(writer: WriterAdapter) -> bool:
    if isinstance(writer, StreamWriterAdapter):
        return not writer._writer.transport.is_closing()
    if isinstance(writer, WebSocketsWriter):
        return not writer._protocol.transport.is_closing()
    return False


async def close_writer(writer: WriterAdapter) -> None:
    """Close a connection, flushing what was written (a CONNACK) for up to CLOSE_SECONDS, and
    reset it if that fails: its file descriptor is released now, not when the garbage collector
    finds the transport."""
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await writer.close()
    except (TimeoutError, OSError) as exc:
        logger.debug("closing a connection failed (%r): resetting it", exc)
    finally:
        if _transport_open(writer):
            abort(writer)
