"""Logs and metrics an operator relies on, against real processes:

- text and JSON formats: a request line with route, status, latency and user id; MQTT connect,
  refusal and disconnect lines with user and client ids; in JSON, every line is one object;
- client mistakes on the embedded broker (a WebSocket with a wrong or missing subprotocol, a
  socket closed before CONNECT, a WebSocket closed mid-session) are one line each, never a
  traceback;
- a `mqim bridge` worker serves /metrics where `--metrics` says, and its counters move.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.api.test_observability import samples, serve_with, value, wait_for_log
from tests.e2e.test_workers import wait_for_log as wait_for_process_log
from tests.helpers import (
    Account,
    create_group,
    free_port,
    make_settings,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
)
from tests.stacks import (
    Stack,
    external_broker_settings,
    mosquitto_for,
    mqim_process,
    postgres_database,
    serve_process,
)


@pytest.fixture(scope="module")
async def text_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("logs-text")
    async with serve_process(make_settings(workdir), workdir / "mqim.log") as stack:
        yield stack


@pytest.fixture(scope="module")
async def json_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    workdir = tmp_path_factory.mktemp("logs-json")
    async with serve_with(make_settings(workdir), workdir / "mqim.log",
                          MQIM_LOG_FORMAT="json") as stack:
        yield stack


async def client_mistakes(stack: Stack) -> None:
    """A wrong and a missing WebSocket subprotocol, a socket closed before CONNECT, and an MQTT
    session over WebSocket whose socket is dropped without DISCONNECT."""
    ws = stack.settings.mqtt_ws
    assert ws is not None
    for subprotocols in (["not-mqtt"], None):
        with pytest.raises(InvalidStatus):
            async with ws_connect(f"ws://{ws}/", subprotocols=subprotocols):  # type: ignore[arg-type]
                pass
    _, writer = await asyncio.open_connection(stack.settings.mqtt.host, stack.settings.mqtt.port)
    writer.close()
    await writer.wait_closed()
    async with ws_connect(f"ws://{ws}/", subprotocols=["mqtt"]):  # type: ignore[list-item]
        pass  # closes with no CONNECT at all


async def session_of(stack: Stack, http: httpx.AsyncClient) -> Account:
    """A user who calls the API, connects over MQTT, is refused once, and disconnects."""
    user = await register(http)
    assert (await http.get("/api/me", headers=user.auth)).status_code == 200
    async with mqtt_session(stack.settings, user):
        pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(stack.settings.mqtt.host, stack.settings.mqtt.port,
                                  username=user.user_id, password="wrong",
                                  identifier=f"{user.user_id}:bad"):
            pass
    return user


async def test_text_lines_and_client_mistakes_without_tracebacks(text_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"http://{text_stack.settings.http}") as http:
        user = await session_of(text_stack, http)
    await client_mistakes(text_stack)
    log = text_stack.log_path
    me = await wait_for_log(log, rf"INFO +api\.requests: GET /api/me 200 [0-9.]+ms "
                                 rf"user={user.user_id}$")
    assert float(me.split(" 200 ")[1].split("ms")[0]) > 0
    uid = user.user_id
    await wait_for_log(log, rf"INFO +broker\.connections: MQTT connect user={uid} "
                            rf"client={uid}:\w+ from=127\.0\.0\.1:\d+$")
    await wait_for_log(log, rf"MQTT disconnect user={uid} client={uid}:\w+ reason=DISCONNECT$")
    await wait_for_log(log, rf"MQTT refused user={uid} client={uid}:bad from=.* "
                            r"reason=bad credentials$")
    await wait_for_log(log, r"WARNING .*MQTT WebSocket handshake from 127\.0\.0\.1:\d+ refused: "
                            r"invalid subprotocol")
    await wait_for_log(log, r"WARNING .*MQTT WebSocket handshake from .* refused: missing "
                            r"subprotocol")
    await wait_for_log(log, r"closed before CONNECT")
    await asyncio.sleep(0.3)  # anything the mistakes would log after their one line
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert "opening handshake failed" not in text
    assert text.count("refused, CONNACK") == 0  # said once, by mqim, not again by amqtt
    refused = [line for line in text.splitlines() if "MQTT WebSocket handshake" in line]
    assert len(refused) == 2
    # Every line starts with a timestamp: nothing spans lines.
    assert all(line[:4].isdigit() for line in text.splitlines() if line), text[-3000:]


async def test_json_lines_parse_and_carry_fields(json_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"http://{json_stack.settings.http}") as http:
        user = await session_of(json_stack, http)
        assert (await http.get(f"/api/threads/{unique_id('t')}/messages", headers=user.auth)
                ).status_code == 404
    await client_mistakes(json_stack)
    await wait_for_log(json_stack.log_path, r"missing subprotocol")
    await asyncio.sleep(0.3)
    records: list[dict[str, Any]] = [
        json.loads(line) for line in json_stack.log_path.read_text().splitlines() if line]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert not [r for r in records if "exc" in r]
    requests = [r for r in records if r["logger"] == "api.requests"
                and r.get("user_id") == user.user_id]
    me = next(r for r in requests if r["route"] == "/api/me")
    assert (me["method"], me["status"], me["level"]) == ("GET", 200, "info")
    assert isinstance(me["ms"], float | int)
    assert me["ms"] > 0
    missing = next(r for r in requests if r["status"] == 404)
    assert (missing["route"], missing["code"]) == ("/api/threads/{thread_id}/messages", 3001)
    mqtt = [r for r in records if r["logger"] == "broker.connections"
            and r.get("user_id") == user.user_id]
    events = {r["event"]: r for r in mqtt}
    assert set(events) == {"connect", "disconnect", "refused"}
    assert events["refused"]["reason"] == "bad credentials"
    assert events["connect"]["client_id"].startswith(f"{user.user_id}:")
    handshakes = [r for r in records if r["logger"] == "websockets.server"]
    assert [r["level"] for r in handshakes] == ["warning", "warning"]


async def test_bridge_worker_serves_metrics(tmp_path: Path) -> None:
    base = make_settings(tmp_path)
    metrics_port = free_port()
    async with AsyncExitStack() as stack:
        db_url = await stack.enter_async_context(postgres_database())
        port, ws = await stack.enter_async_context(mosquitto_for(base, tmp_path))
        settings = external_broker_settings(base, port, ws, database_url=db_url)
        await stack.enter_async_context(mqim_process(settings, tmp_path / "api.log", "api"))
        worker = await stack.enter_async_context(mqim_process(
            settings, tmp_path / "bridge.log", "bridge", "--worker", "1",
            "--metrics", f"127.0.0.1:{metrics_port}", "--log-format", "json", http=False))
        await wait_for_process_log(worker, "bridge consuming")
        await wait_for_process_log(worker, f"metrics on http://127.0.0.1:{metrics_port}")
        metrics = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10))
        before = samples((await metrics.get("/metrics")).text)
        alice = await register(http)
        thread_id = await create_group(http, alice)
        prefix = settings.topic_prefix
        async with mqtt_session(settings, alice) as client:
            await client.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
            for req in ("r0", "r1", "r2"):
                await client.publish(f"{prefix}/up/{alice.user_id}",
                                     send_command(thread_id, f"c-{req}", "hi", req=req), qos=1)
                ack = await next_event(client, lambda t, e: e["type"] == "ack")
                assert ack["req"] == req
        response = await metrics.get("/metrics")
        assert response.status_code == 200
        after = samples(response.text)
        assert value(after, "mqim_messages_persisted_total") - value(
            before, "mqim_messages_persisted_total") == 3
        assert value(after, "mqim_bridge_uplinks_total") >= 3
        assert value(after, "mqim_db_append_seconds_count") >= 3
        assert not [name for name, _ in after if name.startswith("mqim_http_requests")]
        lines = worker.log_path.read_text().splitlines()
        assert len(lines) >= 2
        assert all(json.loads(line)["ts"] for line in lines if line)
