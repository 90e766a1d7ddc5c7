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
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError

from broker.link.uplinks import Received
from contract.hooks_rabbitmq import MQTT_EXCHANGE, routing_key_to_topic, topic_to_routing_key

logger = logging.getLogger(__name__)

UPLINK_QUEUE = "mqim-uplinks"
# Unacked uplinks RabbitMQ hands one worker: a few batches' worth, so group commits stay full
# while the rest of the queue is left for the other workers.
PREFETCH = 1000


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
        self._url, self._prefix, self._queue_name, self._prefetch = url, prefix, queue, prefetch
        self._connection: AbstractRobustConnection | None = None
        self._ready: deque[AmqpUplink] = deque()
        self._unacked: dict[int, AbstractIncomingMessage] = {}
        self._next_mid = 0
        self._reader: asyncio.Future[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> AmqpUplinks:
        # Robust: channel, queue and consumer are re-made after a node dies; what was unacked
        # then is redelivered (to whichever worker), and commands are idempotent.
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(self._queue_name, durable=True,
                                            arguments={"x-queue-type": "quorum"})
        uplinks = topic_to_routing_key(f"{self._prefix}/up") + ".#"
        await queue.bind(MQTT_EXCHANGE, routing_key=uplinks)
        await queue.consume(self._on_message)
        logger.info("bridge consuming %s (quorum queue bound to %s)", self._queue_name, uplinks)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()

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
