"""The bridge process: consume every uplink, hand batches to BatchHandler, ack after commit.

    loop: connect -> subscribe im/up/+ -> drain batches -> on error, back off and reconnect

The QoS 1 PUBACK of an uplink is sent only after its batch is committed and its events are
published, in arrival order (MQTT-4.6.0-2), so a bridge crash loses nothing with a broker that
redelivers (Mosquitto). The connection is a `WireLink` (MQTT on the event loop, no client
library): the bridge's hops are its hot path. In `mqim serve` with the embedded broker, uplinks
come in-process from an `UplinkQueue` instead (amqtt does not redeliver anyway; clients retry
with the same client_msg_id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from actions.context import Context
from bridge.batch import BatchHandler, DatabaseUnavailableError, Uplink
from bridge.metrics import BATCH_SECONDS, BATCH_SIZE, UPLINKS
from broker.acl import AccessSync
from broker.errors import BrokerError
from broker.link.client import service_endpoint
from broker.link.publisher import EventPublisher
from broker.link.uplinks import Received, UplinkSource
from broker.link.wire_link import WireLink
from config import Settings
from contract.topics import TopicKind, TopicScheme
from models.ratelimit import RateLimits
from storage import open_storage

logger = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.2, 10.0
SHARE_GROUP = "mqim-bridge"


async def run_bridge(
    settings: Settings,
    *,
    access: AccessSync,
    client_id: str = "mqim-bridge:bridge",
    on_ready: Callable[[], Awaitable[None]] | None = None,
    publisher: EventPublisher | None = None,
    uplinks: UplinkSource | None = None,
    limits: RateLimits | None = None,
) -> None:
    """Run forever (until cancelled), reconnecting with backoff. The database must be open.

    With an external broker the uplinks are consumed through the shared subscription
    `$share/mqim-bridge/...`, so any number of workers (distinct `client_id`s) split them; the
    embedded amqtt broker has no shared subscriptions, so it gets exactly one bridge.
    `on_ready()` runs after every (re)connect and subscribe (uplinks queue meanwhile).
    `limits` counts sends per user; pass the API's in one process, so MQTT and HTTP share it.
    `access` is told of the access changes that ops make (as the API's is).
    Events go out on the bridge's own connection unless a `publisher` is given (the embedded
    broker's in-process queue, in `mqim serve`); with `uplinks` (and a `publisher`) the bridge
    makes no connection at all.
    """
    scheme = TopicScheme(settings.topic_prefix)
    limits = RateLimits.from_settings(settings) if limits is None else limits
    storage = open_storage(settings)

    def context(events: EventPublisher) -> Context:
        return Context(settings, events, access, scheme, limits, storage)
    if uplinks is not None:
        if publisher is None:
            raise ValueError("an in-process uplink source needs an in-process publisher")
        logger.info("bridge consuming %s from %s", scheme.uplink_filter(),
                    type(uplinks).__name__)
        if on_ready is not None:
            await on_ready()
        await _consume_in_process(uplinks, context(publisher))
        return
    subscription = scheme.uplink_filter(None if settings.embedded_broker else SHARE_GROUP)
    backoff = BACKOFF_MIN
    while True:
        try:
            # A persistent session: the broker queues uplinks while we reconnect.
            async with WireLink(service_endpoint(settings), client_id,
                                clean_session=False) as link:
                await link.subscribe(subscription, qos=1)
                logger.info("bridge consuming %s as %s", subscription, client_id)
                backoff = BACKOFF_MIN
                if on_ready is not None:
                    await on_ready()
                await _consume(link, context(publisher or link))
        except BrokerError as exc:
            logger.warning("bridge lost the broker (%s); reconnecting in %.1fs", exc, backoff)
        except Exception:  # e.g. the database is down: un-acked uplinks return
            logger.exception("bridge batch failed; reconnecting in %.1fs", backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


async def _consume_in_process(uplinks: UplinkSource, ctx: Context) -> None:
    """As _consume; a batch cannot be redelivered by the source, so a fault outside the handler
    (a bug) is logged (its senders get no ack and retry) and the bridge goes on."""
    while True:
        try:
            await _consume(uplinks, ctx)
        except Exception:
            logger.exception("bridge batch failed; its senders will retry; resuming in %.1fs",
                             BACKOFF_MIN)
            await asyncio.sleep(BACKOFF_MIN)


# A backlog: this many uplinks (or more) queued while the last batch was stored.
LINGER_FROM = 8


class Batches:
    """Group commit: the next uplink, plus whatever queued while the last batch was stored.
    When that is a backlog (LINGER_FROM or more: uplinks come faster than the bridge stores
    them) and not a full batch, it first waits `linger_ms` for more: a batch's two statements
    and one flush are most of its cost when batches are small, and a client that waits for
    the backlog anyway hardly notices. Below it (a steady rate the bridge keeps up with, a
    lone message at a quiet time) nothing waits (docs/performance.md)."""

    def __init__(self, source: UplinkSource, size: int, linger_ms: int,
                 linger_from: int = LINGER_FROM) -> None:
        self._source, self._size, self._linger = source, size, linger_ms / 1000
        self._linger_from = linger_from

    async def next(self) -> list[Received]:
        batch = [await self._source.next_message()]
        batch += self._source.take_ready(self._size - 1)
        if self._linger and self._linger_from <= len(batch) < self._size:
            await asyncio.sleep(self._linger)
            batch += self._source.take_ready(self._size - len(batch))
        return batch


async def _consume(link: UplinkSource, ctx: Context) -> None:
    handler = BatchHandler(ctx)
    convert = _to_uplink(ctx.topics)
    batches = Batches(link, ctx.settings.bridge_batch_size, ctx.settings.bridge_linger_ms)
    while True:
        batch = await batches.next()
        UPLINKS.inc(len(batch))
        BATCH_SIZE.observe(len(batch))
        with BATCH_SECONDS.time():
            await _handle_until_stored(handler, [u for u in map(convert, batch) if u is not None])
        for message in batch:
            if message.qos > 0:
                link.ack(message.mid, message.qos)


async def _handle_until_stored(handler: BatchHandler, uplinks: list[Uplink]) -> None:
    """Handle a batch, retrying it while the database is down. The handler answers bad
    commands itself, so only a database fault (or a lost broker) gets here; the backoff starts
    afresh with every batch, so one bad moment never slows the ones after it."""
    backoff = BACKOFF_MIN
    while True:
        try:
            await handler.handle(uplinks)
        except DatabaseUnavailableError as exc:
            logger.warning("bridge batch of %d waits for the database (%s); retrying in %.1fs",
                           len(uplinks), exc.__cause__ or exc, backoff)
        else:
            return
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


def _to_uplink(scheme: TopicScheme) -> Callable[[Received], Uplink | None]:
    def convert(message: Received) -> Uplink | None:
        parsed = scheme.parse(message.topic)
        if parsed is None or parsed.kind != TopicKind.UPLINK:
            logger.warning("ignored a message on unexpected topic %s", message.topic)
            return None
        return Uplink(parsed.ident, bytes(message.payload))

    return convert
