"""The publisher interface the API and the bridge send events through after a commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import aiomqtt

from broker.errors import BrokerUnavailableError
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
    fresh aiomqtt client (aiomqtt clients are not re-entered after a failure).
    """

    def __init__(self, connect: Callable[[], aiomqtt.Client]) -> None:
        self._connect = connect
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ServicePublisher:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def _open(self) -> None:
        client = self._connect()
        await client.__aenter__()
        self._client = client

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
                await client.publish(topic, payload, qos=qos, retain=False)
                return
            except aiomqtt.MqttError as exc:
                if attempt == 2:
                    raise BrokerUnavailableError(f"cannot publish to {topic}: {exc}") from exc
                async with self._lock:
                    if self._client is client:  # nobody reconnected meanwhile
                        logger.warning("publisher lost the broker (%s); reconnecting", exc)
                        await self._close()
                        try:
                            await self._open()
                        except aiomqtt.MqttError as again:
                            raise BrokerUnavailableError(f"broker unreachable: {again}") from again
