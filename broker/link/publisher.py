"""The publisher interface the API and the bridge send events through after a commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import aiomqtt

from broker.errors import BrokerUnavailableError
from broker.link.client import ServiceConnector
from contract.events import WireEvent, encode

logger = logging.getLogger(__name__)


# A topic and the typed event to publish on it.
Event = tuple[str, WireEvent]
encode_event = encode

# aiomqtt warns past 10 publishes in flight; 10 keeps the pipe full without the noise.
PUBLISH_WINDOW = 10


class EventPublisher(Protocol):
    async def publish_all(self, events: Sequence[Event], *, qos: int = 1) -> None:
        """Send JSON events (QoS 1 unless ephemeral, never retained) in order. On return the
        broker has them, or, on a connection that keeps order, will have them before anything
        sent on that connection afterwards (the bridge relies on this to PUBACK uplinks)."""
        ...


class ServicePublisher:
    """An EventPublisher with a connection of its own that it re-opens when the broker drops it.

    Used by the HTTP API: `async with ServicePublisher(connect):`, where `connect()` makes a
    fresh aiomqtt client (aiomqtt clients are not re-entered after a failure). A ServiceConnector
    makes each on the next host: opening tries every host once, starting after the one that
    failed. `lazy` connects in the background instead of before `__aenter__` returns, for a
    process whose own HTTP hooks must admit its login (the API on a hooks broker).
    """

    def __init__(self, connect: Callable[[], aiomqtt.Client], *, lazy: bool = False) -> None:
        self._connect = connect
        self._hosts = len(connect) if isinstance(connect, ServiceConnector) else 1
        self._lazy = lazy
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self._warmup: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ServicePublisher:
        if self._lazy:
            self._warmup = asyncio.create_task(self._warm())
        else:
            await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._warmup is not None:
            self._warmup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warmup
        await self._close()

    async def _warm(self) -> None:
        async with self._lock:
            if self._client is None:
                try:
                    await self._open()
                except BrokerUnavailableError as exc:
                    logger.warning("publisher not connected yet (%s); the next publish retries",
                                   exc)

    async def _open(self) -> None:
        failures: list[str] = []
        for _ in range(self._hosts):
            client = self._connect()
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as exc:
                failures.append(f"{client._hostname}:{client._port}: {exc}")
                continue
            self._client = client
            return
        raise BrokerUnavailableError(f"broker unreachable: {'; '.join(failures)}")

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)

    async def publish_all(self, events: Sequence[Event], *, qos: int = 1) -> None:
        """Up to PUBLISH_WINDOW in flight; one client connection keeps their order (MQTT 4.6)."""
        for begin in range(0, len(events), PUBLISH_WINDOW):
            chunk = events[begin:begin + PUBLISH_WINDOW]
            await asyncio.gather(*(self._publish(t, e, qos) for t, e in chunk))

    async def _publish(self, topic: str, event: WireEvent, qos: int) -> None:
        payload = encode_event(event)
        for attempt in (1, 2):
            client = self._client
            try:
                if client is None:
                    raise aiomqtt.MqttError("not connected")
                await _publish_or_lost(client, topic, payload, qos)
                return
            except aiomqtt.MqttError as exc:
                if attempt == 2:
                    raise BrokerUnavailableError(f"cannot publish to {topic}: {exc}") from exc
                async with self._lock:
                    if self._client is client:  # nobody reconnected meanwhile
                        if client is not None:
                            logger.warning("publisher lost the broker (%s); reconnecting", exc)
                        await self._close()
                        await self._open()


async def _publish_or_lost(client: aiomqtt.Client, topic: str, payload: bytes, qos: int) -> None:
    """Publish, failing as soon as the connection ends. aiomqtt leaves a QoS 1 publish waiting
    for its PUBACK until its timeout (10 s) even after the socket died: a node's kill -9 then
    held every event that long before the reconnect to the next host."""
    publish = asyncio.ensure_future(client.publish(topic, payload, qos=qos, retain=False))
    lost = client._disconnected  # aiomqtt has no public "connection ended"
    await asyncio.wait({publish, lost}, return_when=asyncio.FIRST_COMPLETED)
    if publish.done():
        publish.result()
        return
    publish.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await publish
    cause = lost.exception() if not lost.cancelled() else None
    raise aiomqtt.MqttError(f"connection lost: {cause}")
