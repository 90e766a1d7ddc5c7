"""Ended sessions on MQTT: the device of a session that the server ends gets a `kicked` event on
its `im/u/{user}` (published before the broker is told), then its connection is closed; devices
of other sessions stay connected.

Closing the connection is the broker's part: Mosquitto's plugin kicks on `endSession`, and the
embedded broker closes the connections of an ended session (`MqimBroker.kick_session`) after
letting the events queued before the kick go out, so both the event and the close are asserted
in both modes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import httpx
import pytest

from tests.api.test_accounts import assert_error
from tests.helpers import Account, barrier, mqtt_session, next_event, received_event, register
from tests.stacks import Stack


async def sign_in(http: httpx.AsyncClient, account: Account, platform: str) -> Account:
    """Another device of `account`: a login on `platform`."""
    response = await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": platform})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return Account(account.user_id, data["token"], data["refresh_token"], data["mqtt"])


async def session_id(http: httpx.AsyncClient, device: Account) -> str:
    sessions = (await http.get("/api/me/sessions", headers=device.auth)).json()["data"]
    [current] = [s["id"] for s in sessions if s["current"]]
    return str(current)


async def kicked_then_closed(client: aiomqtt.Client) -> dict[str, Any] | None:
    """Assert that the broker closes the connection (the message stream ends with an
    MqttError); return the `kicked` event if it arrived before that."""
    kicked: dict[str, Any] | None = None
    with pytest.raises(aiomqtt.MqttError):  # noqa: PT012  # the stream ends with it
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                event = received_event(message.payload)
                if event.get("type") == "kicked":
                    kicked = event
    return kicked


def assert_kicked(server: Stack, kicked: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert kicked == expected


async def assert_still_connected(client: aiomqtt.Client, server: Stack, device: Account,
                                 ) -> list[tuple[str, dict[str, Any]]]:
    """A round trip through the bridge; returns what arrived before its answer."""
    seen: list[tuple[str, dict[str, Any]]] = []
    await barrier(client, server.settings, device, seen)
    return seen


async def watch_kick(
    server: Stack, http: httpx.AsyncClient, doomed: Account, survivor: Account | None,
    end: Callable[[], Awaitable[None]], reason: str,
) -> None:
    """`doomed` and `survivor` (two devices of one user) listen on their personal topic; `end()`
    ends doomed's session: doomed gets `kicked` and is dropped, survivor stays connected."""
    topic = f"{server.settings.topic_prefix}/u/{doomed.user_id}"
    doomed_session = await session_id(http, doomed)
    async with mqtt_session(server.settings, doomed) as d:
        await d.subscribe(topic, qos=1)
        if survivor is None:
            await end()
        else:
            async with mqtt_session(server.settings, survivor) as s:
                await s.subscribe(topic, qos=1)
                await end()
                # The survivor sees the event too (it is about another session)...
                event = await next_event(s, lambda t, e: e.get("type") == "kicked")
                assert event["session_id"] == doomed_session
                # ... and stays connected.
                await assert_still_connected(s, server, survivor)
        kicked = await kicked_then_closed(d)
    # Its access token has not expired, but the broker refuses it now (the embedded broker's
    # session cache was told, and so was Mosquitto's plugin).
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_session(server.settings, doomed, timeout=10):
            pass
    assert_error(await http.get("/api/me", headers=doomed.auth), 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/refresh", json={
        "refresh_token": doomed.refresh_token}), 401, 2001, "token_invalid")
    assert_kicked(server, kicked,
                  {"type": "kicked", "session_id": doomed_session, "reason": reason})


async def test_login_on_the_same_platform_kicks_the_older_device(
    server: Stack, http: httpx.AsyncClient
) -> None:
    phone = await register(http, platform="ios")
    laptop = await sign_in(http, phone, "macos")  # another platform leaves the phone alone
    topic = f"{server.settings.topic_prefix}/u/{phone.user_id}"
    async with mqtt_session(server.settings, phone) as p:
        await p.subscribe(topic, qos=1)
        _ = await sign_in(http, phone, "web")
        seen = await assert_still_connected(p, server, phone)
        assert not [e for _, e in seen if e.get("type") == "kicked"]
    assert (await http.get("/api/me", headers=phone.auth)).is_success

    async def new_phone() -> None:
        _ = await sign_in(http, phone, "ios")

    await watch_kick(server, http, phone, laptop, new_phone, "replaced")
    assert (await http.get("/api/me", headers=laptop.auth)).is_success


async def test_remote_sign_out_kicks_that_device(server: Stack, http: httpx.AsyncClient) -> None:
    tablet = await register(http, platform="android")
    desktop = await sign_in(http, tablet, "windows")
    tablet_session = await session_id(http, tablet)

    async def sign_out() -> None:
        ended = await http.delete(f"/api/me/sessions/{tablet_session}", headers=desktop.auth)
        assert ended.status_code == 200, ended.text

    await watch_kick(server, http, tablet, desktop, sign_out, "signed_out_remotely")


async def test_password_change_kicks_the_other_devices(
    server: Stack, http: httpx.AsyncClient
) -> None:
    old = await register(http, platform="linux")
    current = await sign_in(http, old, "web")

    async def change_password() -> None:
        changed = await http.patch("/api/me", headers=current.auth, json={
            "password": "brand-new-9", "current_password": old.password})
        assert changed.status_code == 200, changed.text

    await watch_kick(server, http, old, current, change_password, "password_changed")


async def test_deleting_the_account_kicks_every_device(
    server: Stack, http: httpx.AsyncClient
) -> None:
    device = await register(http, platform="device")

    async def delete() -> None:
        assert (await http.delete("/api/me", headers=device.auth)).status_code == 200

    await watch_kick(server, http, device, None, delete, "deleted")


async def test_refresh_token_reuse_kicks_the_session(
    server: Stack, http: httpx.AsyncClient
) -> None:
    device = await register(http, platform="ios")
    rotated = (await http.post("/api/auth/refresh", json={
        "refresh_token": device.refresh_token})).json()["data"]
    fresh = Account(device.user_id, rotated["token"], rotated["refresh_token"], rotated["mqtt"])

    async def replay() -> None:  # the old token comes back: stolen, the session ends
        assert_error(await http.post("/api/auth/refresh", json={
            "refresh_token": device.refresh_token}), 401, 2001, "token_invalid")

    await watch_kick(server, http, fresh, None, replay, "refresh_reuse")


async def test_banning_kicks_every_device(server: Stack, http: httpx.AsyncClient) -> None:
    admin, device = await register(http), await register(http, platform="android")
    _ = await server.cli("admin", "grant", admin.user_id)

    async def ban() -> None:
        banned = await http.post(f"/api/admin/users/{device.user_id}/ban", headers=admin.auth)
        assert banned.status_code == 200, banned.text

    await watch_kick(server, http, device, None, ban, "banned")


async def _closed(client: aiomqtt.Client) -> None:
    """Wait until the broker closes the client's connection (its message stream then fails)."""
    with pytest.raises(aiomqtt.MqttError):  # noqa: PT012  # the stream ends with the error
        async with asyncio.timeout(5):
            async for _ in client.messages:
                pass


async def test_a_second_connection_with_the_same_client_id_closes_the_first(
    server: Stack, http: httpx.AsyncClient
) -> None:
    """MQTT-3.1.4-2. amqtt 0.12.1 left the first connection open but deaf on a clean session
    (no deliveries, yet PUBACKs and PINGRESPs), so a client never learnt to reconnect; and the
    first's late disconnect forgot the second, which then outlived its session's logout."""
    alice = await register(http)
    personal = f"{server.settings.topic_prefix}/u/{alice.user_id}"
    first = aiomqtt.Client(server.settings.mqtt.host, server.settings.mqtt.port,
                           username=alice.mqtt["username"], password=alice.mqtt["password"],
                           identifier=alice.mqtt["client_id"])
    await first.__aenter__()
    try:
        await first.subscribe(personal, qos=1)
        async with mqtt_session(server.settings, alice) as second:
            await second.subscribe(personal, qos=1)
            await _closed(first)
            seen: list[tuple[str, dict[str, Any]]] = []
            await barrier(second, server.settings, alice, seen)  # the new one is served
            assert (await http.post("/api/auth/logout", headers=alice.auth)).is_success
            await _closed(second)
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await first.__aexit__(None, None, None)
