"""Running the embedded broker: its amqtt configuration, starting it with a clear error when a
port is taken, and the publisher `mqim serve` uses to put events straight into it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import BrokerError as AmqttBrokerError

from broker.acl import Directory
from broker.embedded import observe, session_states
from broker.embedded.broker import CONNECT_TIMEOUT_SECONDS, SESSION_EXPIRY_SECONDS, MqimBroker
from broker.embedded.plugins import ConnectionRegistry
from broker.errors import BrokerError, PortInUseError
from broker.link.client import service_endpoint
from broker.link.publisher import Event, encode_event
from config import Settings
from contract.topics import TopicScheme

logger = logging.getLogger("broker.embedded.broker")


class BrokerPublisher:
    """EventPublisher for `mqim serve` with the embedded broker: events go straight into its
    broadcast queue (FIFO, ACL-checked on delivery), saving a packet encode, send and parse."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def publish_all(self, events: Sequence[Event], *, qos: int = 1) -> None:
        for topic, event in events:
            await self._broker.internal_message_broadcast(topic, encode_event(event), qos)


def broker_config(
    settings: Settings, directory: Directory, connections: ConnectionRegistry
) -> dict[str, Any]:
    endpoint = service_endpoint(settings)
    plugin_config = {
        "directory": directory,
        "scheme": TopicScheme(settings.topic_prefix),
        "service_credentials": {endpoint.username: endpoint.password},
        "connections": connections,
    }
    listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": str(settings.mqtt)}}
    if settings.mqtt_ws is not None:
        listeners["ws"] = {"type": "ws", "bind": str(settings.mqtt_ws)}
    return {
        "listeners": listeners,
        "session_expiry_interval": SESSION_EXPIRY_SECONDS,
        "plugins": {
            "broker.embedded.plugins.MqimAuthPlugin": plugin_config,
            "broker.embedded.plugins.MqimAclPlugin": plugin_config,
        },
    }


@asynccontextmanager
async def embedded_broker(
    settings: Settings, directory: Directory, *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> AsyncIterator[MqimBroker]:
    """Run the embedded broker for the duration of the block."""
    session_states.install()
    connections = ConnectionRegistry()
    observe.watch(connections)
    broker = MqimBroker(broker_config(settings, directory, connections), connections,
                        TopicScheme(settings.topic_prefix), connect_timeout=connect_timeout)
    try:
        await broker.start()
    except (AmqttBrokerError, OSError) as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, OSError) and cause.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise PortInUseError("MQTT", str(settings.mqtt), "--mqtt or MQIM_MQTT") from exc
        raise BrokerError(f"embedded broker failed to start: {exc}") from exc
    ws = f", WebSocket on ws://{settings.mqtt_ws}" if settings.mqtt_ws else ""
    logger.info("embedded MQTT broker listening on mqtt://%s%s", settings.mqtt, ws)
    try:
        yield broker
    finally:
        await broker.shutdown()
