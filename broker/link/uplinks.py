"""Where the bridge reads uplinks from: the interface, and its in-process form for `mqim serve`.

Two sources give the bridge the same four calls:

- `WireLink` (broker/link/wire_link.py): an MQTT subscription to `im/up/+` on an external broker,
  acked after commit, so a broker that redelivers (Mosquitto) loses nothing on a crash;
- `UplinkQueue`: the embedded broker hands each uplink it accepted (ACL already checked)
  straight to the bridge in the same process. This skips, per message, amqtt's fan-out scan over
  every subscription, a PUBLISH encode and write to the bridge, the link's parse, and the bridge's
  PUBACK back. amqtt never redelivers unacknowledged QoS 1 messages anyway, so the guarantee
  is the one it already had: clients retry a send that got no ack (docs/design.md section 4).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Gauge

logger = logging.getLogger(__name__)

# Uplinks waiting for the bridge, past which new ones are dropped (and logged): a bound like
# Mosquitto's max_queued_messages, so a stalled database cannot exhaust memory. Clients retry.
MAX_QUEUED = 50_000
# The same bound in payload bytes: 50,000 uplinks of up to 1 MiB each (the broker's largest
# packet) would otherwise be allowed about 50 GB.
MAX_QUEUED_BYTES = 64 * 1024 * 1024
# One sender's share of the queue: past it, only that sender's uplinks are dropped, so a client
# flooding the broker cannot fill the queue and have other users' commands dropped. Generous
# beside a client flushing hundreds of queued sends after a reconnect.
MAX_QUEUED_PER_SENDER = 2_000
MAX_QUEUED_BYTES_PER_SENDER = 4 * 1024 * 1024

# Read at scrape time from the process's queue (the newest, in tests that build several).
QUEUE_DEPTH = Gauge("mqim_uplink_queue_depth",
                    "Uplinks the embedded broker has queued for the in-process bridge")
QUEUE_DROPPED = Gauge("mqim_uplink_queue_dropped",
                      "Uplinks dropped because that queue was full (clients retry them)")


class Received(Protocol):
    """One uplink as received (broker.link.wire_link.Uplink)."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes | bytearray: ...
    @property
    def mid(self) -> int: ...
    @property
    def qos(self) -> int: ...


class UplinkSource(Protocol):
    async def next_message(self) -> Received:
        """Wait for the next uplink (raises BrokerError when the source is gone)."""
        ...

    def take_ready(self, limit: int) -> Sequence[Received]:
        """Up to `limit` uplinks already received, without waiting (group commit)."""
        ...

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge an uplink once its batch is committed."""
        ...


@dataclass(frozen=True)
class QueuedUplink:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0  # already acknowledged to the client by the broker: nothing to ack


class UplinkQueue:
    """An UplinkSource fed by the embedded broker on the same event loop."""

    def __init__(
        self, max_queued: int = MAX_QUEUED, max_bytes: int = MAX_QUEUED_BYTES, *,
        max_per_sender: int = MAX_QUEUED_PER_SENDER,
        max_bytes_per_sender: int = MAX_QUEUED_BYTES_PER_SENDER,
    ) -> None:
        self._queue: deque[QueuedUplink] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._max_queued = max_queued
        self._max_bytes = max_bytes
        self._max_per_sender = max_per_sender
        self._max_bytes_per_sender = max_bytes_per_sender
        # Per uplink topic (one per sender): its uplinks and their payload bytes in the queue.
        self._senders: dict[str, list[int]] = {}
        self._room: dict[str, asyncio.Future[None]] = {}  # senders waiting in room(), by topic
        self.queued_bytes = 0  # payload bytes in the queue
        self.dropped = 0
        QUEUE_DEPTH.set_function(lambda: len(self._queue))
        QUEUE_DROPPED.set_function(lambda: self.dropped)

    def put(self, topic: str, payload: bytes) -> None:
        share = self._senders.get(topic) or [0, 0]
        if (len(self._queue) >= self._max_queued
                or self.queued_bytes + len(payload) > self._max_bytes
                or share[0] >= self._max_per_sender
                or share[1] + len(payload) > self._max_bytes_per_sender):
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning("bridge is %d uplinks (%d bytes) behind, %d (%d bytes) of them "
                               "from %s: dropped %d (clients retry them)", len(self._queue),
                               self.queued_bytes, share[0], share[1], topic, self.dropped)
            return
        self._queue.append(QueuedUplink(topic, payload))
        self.queued_bytes += len(payload)
        share[0] += 1
        share[1] += len(payload)
        self._senders[topic] = share
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def backlog(self, topic: str) -> int:
        """How many of this uplink topic's (one sender's) uplinks are queued."""
        share = self._senders.get(topic)
        return share[0] if share else 0

    async def room(self, topic: str, limit: int,
                   before_waiting: Callable[[], None] | None = None) -> None:
        """Return once fewer than `limit` of this sender's uplinks are queued: woken by the
        bridge taking them, not by polling (a flooding client costs nothing while it waits).
        `before_waiting` runs first if it has to wait."""
        if before_waiting is not None and self.backlog(topic) >= limit:
            before_waiting()
        while self.backlog(topic) >= limit:
            waiter = self._room.get(topic)
            if waiter is None or waiter.done():
                waiter = self._room[topic] = asyncio.get_running_loop().create_future()
            await waiter

    def _pop(self) -> QueuedUplink:
        uplink = self._queue.popleft()
        self.queued_bytes -= len(uplink.payload)
        share = self._senders[uplink.topic]
        share[0] -= 1
        share[1] -= len(uplink.payload)
        if not share[0]:
            del self._senders[uplink.topic]
        if self._room:
            waiter = self._room.pop(uplink.topic, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        return uplink

    async def next_message(self) -> Received:
        while not self._queue:
            self._reader = asyncio.get_running_loop().create_future()
            await self._reader
        return self._pop()

    def take_ready(self, limit: int) -> list[Received]:
        return [self._pop() for _ in range(min(limit, len(self._queue)))]

    def ack(self, mid: int, qos: int) -> None:
        """Nothing to do: the broker acknowledged the client's PUBLISH on receipt."""
