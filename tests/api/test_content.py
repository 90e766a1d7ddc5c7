"""Typed message content over real HTTP and MQTT on both stacks (docs/messages.md, "Content"):
every type accepted with its content and returned as sent (after normalisation) in the event and
in history; each type's malformed content refused with 4003 naming the field; the seed-004
aliases; `poll` refused from clients; a text message with content refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.test_accounts import assert_error
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack

VALID: list[tuple[str, dict[str, Any]]] = [
    ("image", {"url": "https://cdn.example/a.png", "width": 640, "height": 480, "size": 1234}),
    ("video", {"url": "https://cdn.example/v.mp4", "duration": 12.5, "size": 99,
               "thumbnail_url": "https://cdn.example/v.jpg"}),
    ("audio", {"url": "/api/uploads/f0123", "duration": 3, "size": 10}),
    ("file", {"url": "http://files.example/report.pdf", "name": "report.pdf", "size": 5}),
    ("location", {"lat": 48.8584, "lng": 2.2945, "name": "Tour Eiffel"}),
    ("location", {"lat": -90, "lng": 180}),
    ("sticker", {"sticker_id": "cat-42", "url": "https://stickers.example/cat.webp"}),
    ("sticker", {"sticker_id": "dog"}),
    ("custom", {"custom_type": "card", "data": {"title": "hi", "n": [1, 2]}}),
]

# (type, content, the field the error must name)
INVALID: list[tuple[str, Any, str]] = [
    ("image", {"width": 1, "height": 1}, "url or upload_id"),
    ("image", {"url": "https://a.example/x", "upload_id": "f1"}, "url or upload_id"),
    ("image", {"url": "javascript:alert(1)"}, "content.url"),
    ("image", {"url": "https://a.example/x", "width": 0}, "content.width"),
    ("image", {"url": "https://a.example/x", "height": "10"}, "content.height"),
    ("image", {"url": "https://a.example/x", "exif": {}}, "content.exif"),
    ("video", {"url": "https://a.example/v", "duration": -1}, "content.duration"),
    ("video", {"url": "https://a.example/v", "thumbnail_url": "ftp://x/y"},
     "content.thumbnail_url"),
    ("audio", {"url": "https://a.example/v", "size": -5}, "content.size"),
    ("file", {"url": "https://a.example/f", "name": "x" * 256}, "content.name"),
    ("file", {"upload_id": "../etc"}, "content.upload_id"),
    ("location", {"lat": 91, "lng": 0}, "content.lat"),
    ("location", {"lat": 0, "lng": -180.5}, "content.lng"),
    ("location", {"lat": "1", "lng": 0}, "content.lat"),
    ("location", {"lng": 0}, "content.lat"),
    ("sticker", {"url": "https://a.example/s"}, "content.sticker_id"),
    ("sticker", {"sticker_id": "s" * 65}, "content.sticker_id"),
    ("custom", {"custom_type": "card", "data": [1]}, "content.data"),
    ("custom", {"custom_type": "card", "data": {"x": "y" * 20_000}}, "content.data"),
    ("custom", {"data": {}}, "content.custom_type"),
    ("image", [1, 2], "content"),
    ("text", {"url": "https://a.example/x"}, "content"),
]


async def send(http: httpx.AsyncClient, who: Account, thread_id: str,
               **fields: Any) -> httpx.Response:
    return await http.post(f"/api/threads/{thread_id}/messages", headers=who.auth,
                           json={"client_msg_id": unique_id("c"), **fields})


async def entry(http: httpx.AsyncClient, who: Account, thread_id: str, seq: int,
                ) -> dict[str, Any]:
    page = await http.get(f"/api/threads/{thread_id}/messages", headers=who.auth,
                          params={"after_seq": seq - 1, "limit": 1})
    assert page.status_code == 200, page.text
    [found] = page.json()["data"]
    return dict(found)


def _seq_is(seq: int) -> Callable[[str, dict[str, Any]], bool]:
    return lambda _topic, event: event.get("seq") == seq


async def test_every_type_round_trips(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    async with mqtt_session(server.settings, bob) as client:
        await client.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        for type_, content in VALID:
            sent = await send(http, alice, thread_id, type=type_, content=content)
            assert sent.status_code == 201, sent.text
            seq = sent.json()["data"]["seq"]
            event = await next_event(client, _seq_is(seq))
            expected = {k: float(v) if k in ("lat", "lng", "duration") else v
                        for k, v in content.items()}
            assert (event["msg_type"], event["content"]) == (type_, expected)
            stored = await entry(http, bob, thread_id, seq)
            assert (stored["msg_type"], stored["content"]) == (type_, expected)
    # A caption goes with any type; text has no content.
    captioned = await send(http, alice, thread_id, type="image", body="look",
                           content={"url": "https://cdn.example/b.png"})
    assert captioned.status_code == 201, captioned.text
    plain = await entry(http, alice, thread_id, (await send(
        http, alice, thread_id, body="just text")).json()["data"]["seq"])
    assert (plain["msg_type"], plain["content"]) == ("text", None)


@pytest.mark.parametrize(("type_", "content", "field"), INVALID)
async def test_invalid_content_names_the_field(
        http: httpx.AsyncClient, type_: str, content: Any, field: str) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    refused = await send(http, alice, thread_id, type=type_, content=content, body="x")
    if isinstance(content, dict):
        assert_error(refused, 400, 4003, "content_invalid")
    else:  # not even an object: the body's shape is wrong (1001), before any content rule
        assert_error(refused, 400, 1001, "invalid_parameter")
    assert field in refused.json()["msg"], refused.json()["msg"]


async def test_aliases_and_refused_types(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    image = {"url": "https://cdn.example/a.png"}
    for raw, name, content in [(2, "image", image), ("voice", "audio", image), (1, "text", None),
                               (3, "video", image), (4, "audio", image), (5, "file", image),
                               (100, "custom", {"custom_type": "t", "data": {}})]:
        extra = {"content": content} if content else {"body": "hi"}
        sent = await send(http, alice, thread_id, type=raw, **extra)
        assert sent.status_code == 201, sent.text
        stored = await entry(http, alice, thread_id, sent.json()["data"]["seq"])
        assert stored["msg_type"] == name
    for raw in ("poll", "gif", 6, True, -1):
        refused = await send(http, alice, thread_id, type=raw, body="x")
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] in (4003, 1001)
    poll = await send(http, alice, thread_id, type="poll", body="x")
    assert_error(poll, 400, 4003, "content_invalid")
    assert "polls" in poll.json()["msg"]
    # A non-text message still needs something to show.
    empty = await send(http, alice, thread_id, type="image")
    assert_error(empty, 400, 4003, "content_invalid")
    no_body = await send(http, alice, thread_id, content={"lat": 1, "lng": 1}, body="")
    assert_error(no_body, 400, 4003, "content_invalid")


async def test_mqtt_send_with_content(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as client:
        await client.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        await client.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        good = {"op": "send", "req": "good", "thread_id": thread_id, "client_msg_id": unique_id(),
                "type": 2, "content": {"url": "https://cdn.example/m.png", "width": 3,
                                       "height": 4}}
        bad = {**good, "req": "bad", "client_msg_id": unique_id(), "type": "location",
               "content": {"lat": 100, "lng": 0}}
        text = {**good, "req": "text", "client_msg_id": unique_id(), "type": "text",
                "content": None, "body": "still fine"}
        up = f"{prefix}/up/{alice.user_id}"
        for command in (good, bad, text):  # one bridge batch, most likely: bad costs no other
            await client.publish(up, json.dumps(command), qos=1)
        answers: dict[str, dict[str, Any]] = {}
        while len(answers) < 3:
            event = await next_event(client, lambda _t, e: e.get("req") in ("good", "bad", "text"))
            answers[event["req"]] = event
        assert answers["good"]["type"] == "ack"
        assert answers["text"]["type"] == "ack"
        assert (answers["bad"]["type"], answers["bad"]["code"]) == ("error", 4003)
        assert "content.lat" in answers["bad"]["msg"]
        seq = answers["good"]["data"]["seq"]
    stored = await entry(http, bob, thread_id, seq)
    assert stored["msg_type"] == "image"
    assert stored["content"] == {"url": "https://cdn.example/m.png", "width": 3, "height": 4}
