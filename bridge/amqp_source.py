"""Uplinks from a RabbitMQ quorum queue: the bridge workers as competing consumers.

MQTT clients publish their uplinks to `{prefix}/up/{user}` on RabbitMQ's MQTT plugin, which
routes them through `amq.topic` with the key `{prefix}.up.{user}`. One durable quorum queue
(Raft-replicated on the cluster's nodes) is bound to `{prefix}.up.#` and every `mqim bridge`
worker consumes it over AMQP: RabbitMQ hands each uplink to one worker, and redelivers it to
another if that worker dies before acking. Workers ack after the batch committed.

Why not MQTT for the uplinks on RabbitMQ: its MQTT plugin (3.10) has no shared subscriptions, so
`$share/mqim-bridge/...` would route nothing and N workers on a plain subscription would each get
every uplink. And `#` (not `+`): a user id with dots is several words of the routing key.
Routing keys map back to topics with contract.hooks_rabbitmq.routing_key_to_topic, so dotted
ids reach the bridge intact (the MQTT plugin would hand `u.x`'s uplink over as `im/up/u/x`).

The AMQP URL may name several nodes (`amqp://u:p@h1:5672,h2:5672/`). aio-pika's robust
connection re-dials the one URL it was given, so a worker whose node died would wait for that
node; instead a plain connection is watched here, and when it (or its channel) closes the worker
dials the next node, declares and consumes again. What was unacked on the lost channel is
redelivered by RabbitMQ (to whichever worker), and commands are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from broker.link.uplinks import Received
from config.hosts import parse_amqp_hosts
from contract.hooks_rabbitmq import MQTT_EXCHANGE, routing_key_to_topic, topic_to_routing_key

logger = logging.getLogger(__name__)

UPLINK_QUEUE = "mqim-uplinks"
# Unacked uplinks RabbitMQ hands one worker: a few batches' worth, so group commits stay full
# while the rest of the queue is left for the other workers.
PREFETCH = 1000
CONNECT_TIMEOUT = 10.0
# Between rounds over every node when none answers: doubles from the first to the last.
RETRY_DELAYS = (0.2, 5.0)
_CONNECTION_ERRORS = (AMQPError, ConnectionError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class AmqpUplink:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1  # acked through `ack` after commit


class AmqpUplinks:
    """An UplinkSource over the uplink quorum queue (`async with` connects and consumes)."""

    def __init__(self, url: str, prefix: str, *, queue: str = UPLINK_QUEUE,
                 prefetch: int = PREFETCH) -> None:
        self._servers = parse_amqp_hosts(url)  # a ConfigError if malformed
        self._prefix, self._queue_name, self._prefetch = prefix, queue, prefetch
        self._connection: AbstractConnection | None = None
        self._host = 0  # index of the node consumed from (or to try first)
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._ready: deque[AmqpUplink] = deque()
        self._unacked: dict[int, AbstractIncomingMessage] = {}
        self._next_mid = 0
        self._reader: asyncio.Future[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> AmqpUplinks:
        await self._connect_any()  # at start a worker with no reachable node fails loudly
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        if self._connection is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await self._connection.close()

    async def _connect_any(self) -> None:
        """Consume from the first node that answers, starting with `_host`."""
        failures: list[str] = []
        hosts = self._servers.endpoints
        for step in range(len(hosts)):
            index = (self._host + step) % len(hosts)
            try:
                await self._consume_from(index)
            except _CONNECTION_ERRORS as exc:
                failures.append(f"{hosts[index]}: {exc!r}")
                continue
            self._host = index
            return
        raise ConnectionError(f"no AMQP node reachable: {'; '.join(failures)}")

    async def _consume_from(self, index: int) -> None:
        connection = await aio_pika.connect(self._servers.url(index), timeout=CONNECT_TIMEOUT)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.declare_queue(self._queue_name, durable=True,
                                                arguments={"x-queue-type": "quorum"})
            uplinks = topic_to_routing_key(f"{self._prefix}/up") + ".#"
            await queue.bind(MQTT_EXCHANGE, routing_key=uplinks)
            self._lost.clear()
            self._connection = connection

            def lost(sender: Any, exc: BaseException | None = None) -> None:
                if self._connection is connection:
                    self._lost.set()

            connection.close_callbacks.add(lost)
            channel.close_callbacks.add(lost)
            await queue.consume(self._on_message)
        except BaseException:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await connection.close()
            raise
        logger.info("bridge consuming %s on %s (quorum queue bound to %s)", self._queue_name,
                    self._servers.endpoints[index], uplinks)

    async def _supervise(self) -> None:
        """On a lost connection or channel: forget its deliveries, dial the next node."""
        while True:
            await self._lost.wait()
            lost, self._connection = self._connection, None
            # Deliveries of the dead channel cannot be acked; RabbitMQ redelivers them.
            self._ready.clear()
            self._unacked.clear()
            if lost is not None:
                with contextlib.suppress(*_CONNECTION_ERRORS):
                    await lost.close()
            logger.warning("bridge lost AMQP node %s; trying the others",
                           self._servers.endpoints[self._host])
            self._host = (self._host + 1) % len(self._servers.endpoints)
            delay = RETRY_DELAYS[0]
            while True:
                try:
                    await self._connect_any()
                    break
                except ConnectionError as exc:
                    logger.warning("%s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_DELAYS[1])

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._next_mid += 1
        self._unacked[self._next_mid] = message
        topic = routing_key_to_topic(message.routing_key or "", self._prefix)
        self._ready.append(AmqpUplink(topic, message.body, self._next_mid))
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def next_message(self) -> Received:
        while not self._ready:
            self._reader = asyncio.get_running_loop().create_future()
            await self._reader
        return self._ready.popleft()

    def take_ready(self, limit: int) -> list[Received]:
        return [self._ready.popleft() for _ in range(min(limit, len(self._ready)))]

    def ack(self, mid: int, qos: int) -> None:
        message = self._unacked.pop(mid, None)
        if message is None:
            return
        task = asyncio.create_task(self._ack(message))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    @staticmethod
    async def _ack(message: AbstractIncomingMessage) -> None:
        try:
            await message.ack()
        # Its channel died: RabbitMQ redelivers the uplink anyway.
        except (AMQPError, ChannelInvalidStateError, ConnectionError) as exc:
            logger.debug("uplink ack lost with its channel (%s); it will be redelivered", exc)
