"""The bridge process: consume every uplink, hand batches to BatchHandler, ack after commit.

    loop: connect -> subscribe im/up/+ -> [read into queue | drain batches] -> on error, back off

The QoS 1 PUBACK of an uplink is sent only after its batch is committed and its events are
published, in arrival order (MQTT-4.6.0-2), so a bridge crash loses nothing with a broker that
redelivers (Mosquitto). amqtt does not redeliver; clients retry with the same client_msg_id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiomqtt

from bridge.handlers import BatchHandler, Uplink
from bridge.metrics import BATCH_SECONDS, BATCH_SIZE, UPLINKS
from broker.client import service_client
from broker.publisher import EventPublisher, MqttPublisher
from broker.topics import TopicKind, TopicScheme
from config import Settings

logger = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.2, 10.0


SHARE_GROUP = "mqim-bridge"


async def run_bridge(
    settings: Settings,
    *,
    client_id: str = "mqim-bridge:bridge",
    on_ready: Callable[[aiomqtt.Client], Awaitable[None]] | None = None,
    publisher: EventPublisher | None = None,
) -> None:
    """Run forever (until cancelled), reconnecting with backoff. The database must be open.

    With an external broker the uplinks are consumed through the shared subscription
    `$share/mqim-bridge/...`, so any number of workers (distinct `client_id`s) split them; the
    embedded amqtt broker has no shared subscriptions, so it gets exactly one bridge.
    `on_ready(client)` runs after every (re)connect and subscribe (uplinks queue meanwhile).
    Events go out on the bridge's own connection unless a `publisher` is given (the embedded
    broker's in-process queue, in `mqim serve`).
    """
    scheme = TopicScheme(settings.topic_prefix)
    uplinks = scheme.uplink_filter(None if settings.embedded_broker else SHARE_GROUP)
    backoff = BACKOFF_MIN
    while True:
        try:
            # A persistent session: the broker queues uplinks while we reconnect.
            async with service_client(settings, client_id, clean_session=False) as client:
                # aiomqtt has no public manual-ack API (empicano/aiomqtt#345); paho's is public.
                client._client.manual_ack_set(True)  # pinned aiomqtt==2.5.1
                await client.subscribe(uplinks, qos=1)
                logger.info("bridge consuming %s as %s", uplinks, client_id)
                backoff = BACKOFF_MIN
                if on_ready is not None:
                    await on_ready(client)
                await _consume(client, settings, scheme, publisher or MqttPublisher(client))
        except* aiomqtt.MqttError as group:
            logger.warning("bridge lost the broker (%s); reconnecting in %.1fs",
                           group.exceptions[0], backoff)
        except* Exception:  # e.g. the database is down: un-acked uplinks return
            logger.exception("bridge batch failed; reconnecting in %.1fs", backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


async def _consume(
    client: aiomqtt.Client, settings: Settings, scheme: TopicScheme, publisher: EventPublisher
) -> None:
    handler = BatchHandler(
        publisher, scheme, max_payload_bytes=settings.max_payload_bytes,
        max_body_chars=settings.max_body_chars,
    )
    queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

    async def read() -> None:
        async for message in client.messages:
            queue.put_nowait(message)
        raise aiomqtt.MqttError("message stream ended")

    async def process() -> None:
        while True:
            batch = [await queue.get()]
            # Group commit: whatever queued up while the last batch was being stored.
            while len(batch) < settings.bridge_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            UPLINKS.inc(len(batch))
            BATCH_SIZE.observe(len(batch))
            with BATCH_SECONDS.time():
                await handler.handle([u for u in map(_to_uplink(scheme), batch) if u is not None])
            for message in batch:
                if message.qos > 0:
                    client._client.ack(message.mid, message.qos)  # see above

    async with asyncio.TaskGroup() as group:
        group.create_task(read())
        group.create_task(process())


def _to_uplink(scheme: TopicScheme) -> Callable[[aiomqtt.Message], Uplink | None]:
    def convert(message: aiomqtt.Message) -> Uplink | None:
        parsed = scheme.parse(message.topic.value)
        if parsed is None or parsed.kind != TopicKind.UPLINK:
            logger.warning("ignored a message on unexpected topic %s", message.topic.value)
            return None
        return Uplink(parsed.ident, bytes(message.payload))

    return convert
