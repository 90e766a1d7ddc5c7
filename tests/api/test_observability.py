"""What an operator sees of a running stack, on both stacks: one log line per HTTP request (with
the route template, status, latency and user id), and Prometheus metrics that move when
messages are stored and errors are answered, over HTTP and over MQTT."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from tests.helpers import (
    create_group,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack, _wait_healthy, settings_env, stop_mqim


@asynccontextmanager
async def serve_with(settings: Settings, log_path: Path, *args: str, **env: str,
                     ) -> AsyncIterator[Stack]:
    """`mqim ARGS` (serve by default) with extra MQIM_* variables, e.g. MQIM_CORS_ORIGINS, that
    tests/stacks.py does not pass; yields once /health answers."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mqim", *(args or ("serve",)),
            env={**settings_env(settings), **env}, stdout=log, stderr=log)
    stack = Stack(settings, process, log_path)
    try:
        await _wait_healthy(stack)
        yield stack
    finally:
        await stop_mqim(stack)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(http: httpx.AsyncClient, path: str = "/metrics",
                 ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def value(page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


async def wait_for_log(path: Path, pattern: str) -> str:
    """The first log line matching `pattern` (the log is written as the server goes)."""
    regex = re.compile(pattern)
    async with asyncio.timeout(10):
        while True:
            text = await asyncio.to_thread(path.read_text, errors="replace")
            for line in text.splitlines():
                if regex.search(line):
                    return line
            await asyncio.sleep(0.05)


async def test_one_log_line_per_request_with_route_status_latency_and_user(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    marker = unique_id("nothere")
    assert (await http.get(f"/api/threads/{marker}/messages", headers=alice.auth)
            ).status_code == 404
    line = await wait_for_log(
        server.log_path,
        rf"api\.requests: GET /api/threads/\{{thread_id\}}/messages 404 [0-9.]+ms "
        rf"user={alice.user_id}$")
    assert marker not in line  # the template, never the concrete path
    history = await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)
    assert history.status_code == 200
    await wait_for_log(server.log_path, rf"GET /api/threads/\{{thread_id\}}/messages 200 "
                                        rf"[0-9.]+ms user={alice.user_id}$")
    # Unauthenticated and refused: no user, the status says why.
    assert (await http.get("/api/me")).status_code == 401
    await wait_for_log(server.log_path, r"GET /api/me 401 [0-9.]+ms user=-$")


async def test_metrics_move_with_messages_and_errors(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    before = await scrape(http)
    route = "/api/threads/{thread_id}/messages"
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                           json={"type": "text", "body": "hi", "client_msg_id": unique_id()})
    assert sent.status_code == 201
    missing = await http.get(f"/api/threads/{unique_id('t')}/messages", headers=alice.auth)
    assert missing.json()["code"] == 3001
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as client:
        await client.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        # A send over MQTT, then a command the bridge refuses (1001, invalid parameter).
        await client.publish(f"{prefix}/up/{bob.user_id}", json.dumps({
            "op": "send", "req": "s1", "thread_id": thread_id, "client_msg_id": unique_id(),
            "type": "text", "body": "over mqtt"}), qos=1)
        await next_event(client, lambda t, e: e.get("req") == "s1" and e["type"] == "ack")
        await client.publish(f"{prefix}/up/{bob.user_id}",
                             json.dumps({"op": "read", "req": "bad", "thread_id": thread_id}),
                             qos=1)
        error = await next_event(client, lambda t, e: e.get("req") == "bad")
        assert error["type"] == "error"  # counted before it was published
    after = await scrape(http)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mqim_messages_persisted_total") == 2  # one over HTTP, one over MQTT
    assert moved("mqim_stats_messages") == 2
    assert moved("mqim_http_requests_total", method="POST", route=route, status="201") == 1
    assert moved("mqim_http_request_seconds_count", method="POST", route=route) == 1
    assert moved("mqim_errors_total", transport="http", code="3001",
                 error="thread_not_found") == 1
    assert moved("mqim_errors_total", transport="mqtt", code=str(error["code"]),
                 error=error["error"]) == 1
    assert moved("mqim_events_published_total", type="message") >= 2
    assert moved("mqim_db_append_seconds_count") >= 2
    if server.settings.embedded_broker:
        assert ("mqim_uplink_queue_depth", frozenset()) in after
        assert moved("mqim_mqtt_connects_total", result="accepted") == 1


async def test_cors_is_off_by_default(server: Stack, http: httpx.AsyncClient) -> None:
    preflight = await http.options("/api/auth/login", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 405
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
