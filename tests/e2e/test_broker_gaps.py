"""The amqtt 0.12.1 gaps that mqim closes (docs/guarantees.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt
import httpx
import pytest

from tests.helpers import barrier, mqtt_session, register
from tests.stacks import Stack


async def test_retained_messages_are_not_kept_so_cannot_leak(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    alice, mallory = await register(embedded_http), await register(embedded_http)
    prefix = embedded_server.settings.topic_prefix
    async with mqtt_session(embedded_server.settings, alice) as a:
        # amqtt would replay this to every new client whose filters match anyone's, with no
        # ACL check; the bridge's im/up/+ matches it.
        await a.publish(f"{prefix}/up/{alice.user_id}", b'{"op": "secret"}', qos=1, retain=True)
    async with mqtt_session(embedded_server.settings, mallory) as m:
        await m.subscribe(f"{prefix}/u/{mallory.user_id}", qos=1)
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(m, embedded_server.settings, mallory, seen)
    assert seen == []


async def test_publish_to_a_dollar_topic_closes_the_connection(
    embedded_server: Stack, embedded_http: httpx.AsyncClient
) -> None:
    alice = await register(embedded_http)
    async with mqtt_session(embedded_server.settings, alice) as a:
        await a.publish("$SYS/broker/hack", b"x", qos=0)
        with pytest.raises(aiomqtt.MqttError):  # noqa: PT012  # the stream ends with the error
            async with asyncio.timeout(5):
                async for _ in a.messages:
                    pass
    # The server is fine and alice can come back.
    async with mqtt_session(embedded_server.settings, alice) as again:
        await again.subscribe(f"{embedded_server.settings.topic_prefix}/u/{alice.user_id}", qos=1)
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(again, embedded_server.settings, alice, seen)


@pytest.mark.parametrize("clean_session", [True, False])
async def test_refused_connect_cannot_take_over_a_client_id(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, clean_session: bool
) -> None:
    alice, mallory = await register(embedded_http), await register(embedded_http)
    prefix = embedded_server.settings.topic_prefix
    async with mqtt_session(embedded_server.settings, alice) as a:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        for victim_id in (alice.mqtt["client_id"], "mqim-bridge"):
            with pytest.raises(aiomqtt.MqttError):
                async with aiomqtt.Client(
                    embedded_server.settings.mqtt.host, embedded_server.settings.mqtt.port,
                    identifier=victim_id,
                    username=mallory.user_id, password=mallory.token, timeout=5,
                    clean_session=clean_session,
                ):
                    pass
        # alice is still connected and subscribed, and the bridge still answers her.
        seen: list[tuple[str, dict[str, Any]]] = []
        await barrier(a, embedded_server.settings, alice, seen)
