"""The SDK keeps its access token fresh, against a server whose tokens live 3 s: before expiry,
after a 401, once for many concurrent requests (a refresh token works once: a second use would
end the session), and before an MQTT reconnect.

The stack is the Mosquitto one: the reconnect below is forced by another connection taking the
SDK's client id over, which Mosquitto answers by disconnecting the SDK (MQTT-3.1.4-2). The
embedded broker (amqtt 0.12.1) instead keeps the old connection open without its subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import httpx
import pytest

from mqim_client import Client
from tests.sdk.conftest import PASSWORD, client_for, signed_up
from tests.stacks import Stack, running_stack

TTL = 3


@pytest.fixture(scope="module")
async def short_lived(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("short-tokens")
    async with running_stack("mosquitto", workdir, access_token_ttl=TTL) as stack:
        yield stack


@asynccontextmanager
async def recording_client(stack: Stack, statuses: list[int],
                           **options: float) -> AsyncIterator[Client]:
    """A signed-up client whose HTTP answers' statuses land in `statuses`."""
    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    async with httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=10,
                                 event_hooks={"response": [record]}) as http:
        client = await signed_up(client_for(stack, http=http, **options))
        try:
            yield client
        finally:
            await client.close()


async def test_the_token_is_refreshed_before_it_expires(short_lived: Stack) -> None:
    statuses: list[int] = []
    async with recording_client(short_lived, statuses) as client:
        first = client.session.token
        await asyncio.sleep(TTL - 0.5)  # inside the margin (a quarter of the lifetime)
        me = await client.request("GET", "/api/me")
        assert me["id"] == client.user_id
        assert client.session.token != first
        assert client.api.refreshes == 1
        assert 401 not in statuses


async def test_a_401_refreshes_and_tries_again(short_lived: Stack) -> None:
    statuses: list[int] = []
    # A negative margin: never early, only a 401 refreshes.
    async with recording_client(short_lived, statuses, refresh_margin=-60) as client:
        await asyncio.sleep(TTL + 1.2)  # expired (the JWT's exp is in whole seconds)
        statuses.clear()
        me = await client.request("GET", "/api/me")
        assert me["id"] == client.user_id
        assert statuses == [401, 200, 200]  # the expired call, the refresh, the retry
        assert client.api.refreshes == 1


async def test_concurrent_401s_refresh_once(short_lived: Stack) -> None:
    statuses: list[int] = []
    # A negative margin: never early, only a 401 refreshes.
    async with recording_client(short_lived, statuses, refresh_margin=-60) as client:
        await asyncio.sleep(TTL + 1.2)
        statuses.clear()
        answers = await asyncio.gather(*(client.request("GET", "/api/me") for _ in range(5)))
        assert {me["id"] for me in answers} == {client.user_id}
        assert statuses.count(401) >= 2  # several met the expired token at once ...
        assert client.api.refreshes == 1  # ... and one refreshed: the others took its token


async def test_a_reconnect_after_expiry_refreshes_first(short_lived: Stack) -> None:
    """Another connection takes over the SDK's client id (the broker drops the SDK's), after
    its token expired: the SDK refreshes, reconnects and sends."""
    client = await signed_up(client_for(short_lived))
    other = client_for(short_lived)
    try:
        thread_id = await client.create_thread("group", [])
        await client.connect()
        await asyncio.sleep(TTL + 1.2)
        await other.login(client.user_id, PASSWORD, platform="linux")
        settings = short_lived.settings
        async with aiomqtt.Client(settings.mqtt.host, settings.mqtt.port,
                                  username=client.user_id, password=other.session.token,
                                  identifier=client.session.mqtt.client_id):
            pass  # taking the client id over is enough
        sent = await client.send(thread_id, "after the takeover")
        assert sent.seq == 2
        assert client.stats.connects >= 2
        assert client.api.refreshes >= 1
    finally:
        await client.close()
        await other.close()
