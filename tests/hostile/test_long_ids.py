"""Ids longer than any stored one, in every place a message route or op takes one: a clear 1001
(or the route's own not-found), never a 500; over MQTT an `error` with the command's `req`, and
the other sends of the same batch still stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.helpers import create_group, mqtt_session, next_event, register, send_command
from tests.stacks import Stack

LONG = "m" + "a" * 60  # a valid id by its pattern, longer than any message, poll or upload id


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/messages/{m}", None),
    ("GET", "/messages/{m}/replies", None),
    ("GET", "/messages/{m}/receipts", None),
    ("GET", "/messages/{m}/edits", None),
    ("POST", "/messages/{m}/reactions", {"emoji": "👍"}),
    ("DELETE", "/messages/{m}/reactions/x", None),
    ("DELETE", "/messages/{m}", None),
    ("PATCH", "/messages/{m}", {"body": "x"}),
    ("POST", "/messages/{m}/forward", {"thread_ids": ["{t}"]}),
    ("GET", "/messages?before_id={m}", None),
    ("GET", "/polls/{m}", None),
    ("POST", "/polls/{m}/votes", {"option_ids": [0]}),
    ("POST", "/polls/{m}/close", None),
    ("POST", "/messages", {"body": "x", "reply_to": "{m}"}),
    ("POST", "/messages", {"type": "image", "content": {"upload_id": "f" + "0" * 60}}),
])
async def test_long_ids_are_client_errors(http: httpx.AsyncClient, method: str, path: str,
                                          body: dict[str, object] | None) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    filled = json.loads(json.dumps(body).replace("{m}", LONG).replace("{t}", thread_id))
    response = await http.request(method, f"/api/threads/{thread_id}" + path.format(m=LONG),
                                  headers=alice.auth, json=filled)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["code"] in (1001, 4001, 4007), response.text


async def test_a_long_upload_id_does_not_exist(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    response = await http.get("/api/uploads/f" + "0" * 60, headers=alice.auth)
    assert (response.status_code, response.json()["code"]) == (404, 4007)


async def test_a_long_id_over_mqtt_costs_only_its_own_command(
        server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as client:
        await client.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        up = f"{prefix}/up/{alice.user_id}"
        await client.publish(up, json.dumps({
            "op": "react", "req": "long", "thread_id": thread_id, "message_id": LONG,
            "emoji": "👍"}), qos=1)
        await client.publish(up, json.dumps({
            "op": "send", "req": "file", "thread_id": thread_id, "client_msg_id": "lf",
            "type": "file", "content": {"upload_id": "f" + "0" * 60}}), qos=1)
        await client.publish(up, send_command(thread_id, "ok-1", "still here"), qos=1)
        answers: dict[str, dict[str, Any]] = {}
        while len(answers) < 3:
            event = await next_event(client, lambda _t, e: e.get("type") in ("ack", "error"))
            answers[event["req"]] = event
    assert answers["long"]["type"] == "error"
    assert answers["long"]["code"] in (1001, 4001)
    assert (answers["file"]["type"], answers["file"]["code"]) == ("error", 4007)
    assert answers["ok-1"]["type"] == "ack"
