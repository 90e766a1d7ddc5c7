"""Reactions, unsend and edit over real HTTP on both stacks (docs/messages.md): each action's
entry on the thread topic (seen by a real MQTT client), the no-ops that write and publish
nothing, the refusals (non-members, someone else's message, hostile emojis, the windows), and
what an unsend erases, checked straight in the stack's database, its storage and its search."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_uploads import png, stored_files, upload
from tests.helpers import Account, create_group, mqtt_session, next_event, register, unique_id
from tests.stacks import Stack


async def sql(server: Stack, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run `query` (`?` placeholders) straight in the stack's database; its rows."""
    url = server.settings.db_url
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").split("?", 1)[0]

        def run() -> list[tuple[Any, ...]]:
            with sqlite3.connect(path, timeout=10) as db:
                rows = [tuple(r) for r in db.execute(query, params).fetchall()]
            db.close()
            return rows

        return await asyncio.to_thread(run)
    parts = query.split("?")
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return [tuple(r) for r in await conn.fetch(numbered, *params)]
    finally:
        await conn.close()


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def age_message(server: Stack, message_id: str, days: int = 2) -> None:
    """Move a message's send time back (the windows are a day by default)."""
    then = datetime.now(UTC) - timedelta(days=days)
    value: Any = then if not server.settings.db_url.startswith("sqlite://") else (
        then.isoformat(sep=" "))
    await sql(server, "UPDATE message SET created_at = ? WHERE id = ?", value, message_id)


async def post(http: httpx.AsyncClient, who: Account, thread_id: str, body: str = "hello",
               **extra: Any) -> tuple[str, int]:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=who.auth,
                               json={"client_msg_id": unique_id("c"), "body": body, **extra})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return str(data["message_id"]), int(data["seq"])


def msg_url(thread_id: str, message_id: str) -> str:
    return f"/api/threads/{thread_id}/messages/{message_id}"


async def react(http: httpx.AsyncClient, who: Account, thread_id: str, message_id: str,
                emoji: str) -> httpx.Response:
    return await http.post(f"{msg_url(thread_id, message_id)}/reactions", headers=who.auth,
                           json={"emoji": emoji})


async def unreact(http: httpx.AsyncClient, who: Account, thread_id: str, message_id: str,
                  emoji: str) -> httpx.Response:
    return await http.delete(f"{msg_url(thread_id, message_id)}/reactions/{quote(emoji, safe='')}",
                             headers=who.auth)


async def edit(http: httpx.AsyncClient, who: Account, thread_id: str, message_id: str,
               **body: Any) -> httpx.Response:
    return await http.patch(msg_url(thread_id, message_id), headers=who.auth, json=body)


def seq_of(response: httpx.Response, thread_id: str, message_id: str) -> int | None:
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["thread_id"], data["message_id"]) == (thread_id, message_id)
    seq: int | None = data["seq"]
    return seq


async def history(http: httpx.AsyncClient, who: Account, thread_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/api/threads/{thread_id}/messages", headers=who.auth,
                              params={"limit": 200})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


async def test_react_and_unreact(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    mid, _ = await post(http, alice, thread_id)
    seen: list[tuple[str, dict[str, Any]]] = []
    async with mqtt_session(server.settings, alice) as device:
        await device.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        s1 = seq_of(await react(http, bob, thread_id, mid, "👍"), thread_id, mid)
        assert seq_of(await react(http, bob, thread_id, mid, "👍"), thread_id, mid) is None
        s2 = seq_of(await react(http, alice, thread_id, mid, "👍"), thread_id, mid)
        family = "👨‍👩‍👧"  # joined with U+200D: format characters are fine
        s3 = seq_of(await react(http, bob, thread_id, mid, family), thread_id, mid)
        # Only one's own reaction goes: bob removing a heart nobody gave changes nothing.
        assert seq_of(await unreact(http, bob, thread_id, mid, "❤"), thread_id, mid) is None
        s4 = seq_of(await unreact(http, bob, thread_id, mid, family), thread_id, mid)
        assert seq_of(await unreact(http, bob, thread_id, mid, family), thread_id, mid) is None
        slash = seq_of(await react(http, bob, thread_id, mid, "a/b"), thread_id, mid)
        s5 = seq_of(await unreact(http, bob, thread_id, mid, "a/b"), thread_id, mid)
        _, marker = await post(http, alice, thread_id, "marker")
        await next_event(device, lambda t, e: e.get("seq") == marker, seen=seen)
    written = [s1, s2, s3, s4, slash, s5]
    assert all(isinstance(s, int) for s in written)
    assert len(set(written)) == len(written)
    reactions = [e for _, e in seen if e["type"] == "message_reaction"]
    assert [(e["seq"], e["user_id"], e["reaction"], e["action"]) for e in reactions] == [
        (s1, bob.user_id, "👍", "add"), (s2, alice.user_id, "👍", "add"),
        (s3, bob.user_id, family, "add"), (s4, bob.user_id, family, "remove"),
        (slash, bob.user_id, "a/b", "add"), (s5, bob.user_id, "a/b", "remove")]
    assert all(e["message_id"] == mid and e["thread_id"] == thread_id for e in reactions)
    rows = await sql(server, "SELECT user_id, emoji FROM message_reaction WHERE message_id = ?",
                     mid)
    assert sorted(rows) == sorted([(alice.user_id, "👍"), (bob.user_id, "👍")])
    # Each entry is in the timeline too, in order, gapless.
    entries = await history(http, bob, thread_id)
    assert [e["seq"] for e in entries] == list(range(1, marker + 1))
    assert [e["seq"] for e in entries if e["type"] == "message_reaction"] == [
        s1, s2, s3, s4, slash, s5]
    # Strangers and unknown messages.
    assert_error(await react(http, mallory, thread_id, mid, "👍"), 403, 3003, "not_a_member")
    assert_error(await unreact(http, mallory, thread_id, mid, "👍"), 403, 3003, "not_a_member")
    assert_error(await react(http, bob, thread_id, "m0000nope", "👍"), 404, 4001,
                 "message_not_found")
    other_thread = await create_group(http, bob, alice)
    assert_error(await react(http, bob, other_thread, mid, "👍"), 404, 4001,
                 "message_not_found")
    assert (await http.post(f"{msg_url(thread_id, mid)}/reactions", json={"emoji": "x"})
            ).status_code == 401


async def test_hostile_emojis_and_caps(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, carol, dave = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, alice, bob, carol, dave)
    mid, _ = await post(http, alice, thread_id)
    for emoji in ("a\x07", "\x00", "x\u0085", "   ", "\t"):
        assert_error(await react(http, bob, thread_id, mid, emoji), 400, 4003,
                     "content_invalid")
        assert_error(await unreact(http, bob, thread_id, mid, emoji), 400, 4003,
                     "content_invalid")
    for body in ({"emoji": "x" * 33}, {"emoji": ""}, {"emoji": 1}, {}, {"emoji": ["x"]}):
        response = await http.post(f"{msg_url(thread_id, mid)}/reactions", headers=bob.auth,
                                   json=body)
        assert_error(response, 400, 1001, "invalid_parameter")
    assert_error(await unreact(http, bob, thread_id, mid, "x" * 33), 400, 1001,
                 "invalid_parameter")
    assert await sql(server, "SELECT id FROM message_reaction WHERE message_id = ?", mid) == []
    # 32 characters is the limit, not a refusal.
    assert seq_of(await react(http, bob, thread_id, mid, "y" * 32), thread_id, mid)
    # At most 20 reactions per user, 50 distinct emojis per message.
    for i in range(19):
        assert seq_of(await react(http, bob, thread_id, mid, f"b{i}"), thread_id, mid)
    assert_error(await react(http, bob, thread_id, mid, "one-more"), 400, 1001,
                 "invalid_parameter")
    for who, prefix in ((alice, "a"), (carol, "c")):
        for i in range(20 if who is alice else 10):
            assert seq_of(await react(http, who, thread_id, mid, f"{prefix}{i}"), thread_id, mid)
    assert_error(await react(http, alice, thread_id, mid, "fresh"), 400, 1001,
                 "invalid_parameter")
    # An emoji already on the message may still be added by someone else.
    assert seq_of(await react(http, dave, thread_id, mid, "b0"), thread_id, mid)
    assert_error(await react(http, dave, thread_id, mid, "fresh"), 400, 1001,
                 "invalid_parameter")


async def test_unsend_erases_the_message_everywhere(server: Stack, http: httpx.AsyncClient,
                                                    ) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    tag = unique_id("secret")
    mid, _ = await post(http, alice, thread_id, f"first {tag}")
    assert seq_of(await react(http, bob, thread_id, mid, "👍"), thread_id, mid)
    assert seq_of(await edit(http, alice, thread_id, mid, body=f"second {tag}"), thread_id, mid)
    search = f"/api/threads/{thread_id}/messages/search"
    found = await http.get(search, headers=bob.auth, params={"q": tag})
    assert [m["message_id"] for m in found.json()["data"]["messages"]] == [mid]
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        seq = seq_of(await http.delete(msg_url(thread_id, mid), headers=alice.auth),
                     thread_id, mid)
        event = await next_event(device, lambda t, e: e["type"] == "message_unsend")
    assert seq is not None
    assert event["seq"] == seq
    assert (event["message_id"], event["deleted_by"]) == (mid, alice.user_id)
    assert abs(event["deletionTimestamp"] - event["created_at"]) < 5000
    # Again: nothing to do, nothing written.
    assert seq_of(await http.delete(msg_url(thread_id, mid), headers=alice.auth),
                  thread_id, mid) is None
    [(body, content, attachments, mentions, deleted)] = await sql(
        server, "SELECT body, content, attachments, mentions, deleted FROM message WHERE id = ?",
        mid)
    assert (body, content, as_json(attachments), as_json(mentions), bool(deleted)) == (
        None, None, [], [], True)
    assert await sql(server, "SELECT id FROM message_version WHERE message_id = ?", mid) == []
    assert await sql(server, "SELECT id FROM message_reaction WHERE message_id = ?", mid) == []
    edits = [as_json(d) for (d,) in await sql(
        server, "SELECT data FROM message WHERE thread_id = ? AND type = 'message_edit'",
        thread_id)]
    assert len(edits) == 1
    assert (edits[0]["message_id"], edits[0]["body"], edits[0]["content"]) == (mid, None, None)
    # The timeline keeps every entry, gapless, the message as a tombstone.
    entries = await history(http, bob, thread_id)
    assert [e["seq"] for e in entries] == list(range(1, seq + 1))
    [message] = [e for e in entries if e.get("message_id") == mid and e["type"] == "message"]
    assert (message["deleted"], message["body"], message["content"]) == (True, None, None)
    assert (message["attachments"], message["mentions"]) == ([], [])
    assert [e["type"] for e in entries[-3:]] == ["message_reaction", "message_edit",
                                                 "message_unsend"]
    assert (entries[-2]["body"], entries[-2]["content"]) == (None, None)
    found = await http.get(search, headers=bob.auth, params={"q": tag})
    assert found.json()["data"]["messages"] == []
    # Nothing more can happen to it.
    assert_error(await react(http, bob, thread_id, mid, "👍"), 404, 4001, "message_not_found")
    assert_error(await edit(http, alice, thread_id, mid, body="again"), 404, 4001,
                 "message_not_found")
    assert_error(await http.get(f"{msg_url(thread_id, mid)}/edits", headers=alice.auth), 404,
                 4001, "message_not_found")
    assert seq_of(await unreact(http, bob, thread_id, mid, "👍"), thread_id, mid) is None


async def test_who_may_unsend(server: Stack, http: httpx.AsyncClient) -> None:
    owner, bob, carol, mallory = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob, carol)
    from_carol, _ = await post(http, carol, thread_id)
    for who, status, code, error in ((bob, 403, 1004, "forbidden"),
                                     (mallory, 403, 3003, "not_a_member")):
        assert_error(await http.delete(msg_url(thread_id, from_carol), headers=who.auth),
                     status, code, error)
    assert seq_of(await http.delete(msg_url(thread_id, from_carol), headers=owner.auth),
                  thread_id, from_carol)
    # Even an unsent message is not another member's to unsend (no leak of a no-op).
    assert_error(await http.delete(msg_url(thread_id, from_carol), headers=bob.auth),
                 403, 1004, "forbidden")
    made = await http.post(f"/api/threads/{thread_id}/admins", headers=owner.auth,
                           json={"user_ids": [bob.user_id]})
    assert made.status_code == 200, made.text
    # After the window: the sender no longer may (4004), an admin still may.
    old, _ = await post(http, carol, thread_id)
    await age_message(server, old)
    assert_error(await http.delete(msg_url(thread_id, old), headers=carol.auth), 403, 4004,
                 "window_passed")
    assert seq_of(await http.delete(msg_url(thread_id, old), headers=bob.auth), thread_id, old)
    [(unsender,)] = await sql(server, "SELECT sender_id FROM message WHERE thread_id = ? "
                              "AND type = 'message_unsend' ORDER BY seq DESC LIMIT 1", thread_id)
    assert unsender == bob.user_id
    fresh, _ = await post(http, carol, thread_id)
    assert seq_of(await http.delete(msg_url(thread_id, fresh), headers=carol.auth),
                  thread_id, fresh)
    assert_error(await http.delete(msg_url(thread_id, "m0000nope"), headers=owner.auth),
                 404, 4001, "message_not_found")


async def test_unsend_erases_the_file(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    answer = await upload(http, alice, png(8, 6))
    assert answer.status_code == 201, answer.text
    view = answer.json()["data"]
    before = stored_files(server.settings)
    mid, _ = await post(http, alice, thread_id, "a picture", type="image",
                        content={"upload_id": view["upload_id"]})
    got = await http.get(view["url"], headers=bob.auth)
    assert got.status_code == 200, got.text
    # An edit keeps the file: its content may change around the same upload_id, never to another.
    other = (await upload(http, alice, png(2, 2))).json()["data"]["upload_id"]
    assert_error(await edit(http, alice, thread_id, mid, content={"upload_id": other}), 400,
                 4003, "content_invalid")
    assert seq_of(await edit(http, alice, thread_id, mid,
                             content={"upload_id": view["upload_id"], "width": 80}),
                  thread_id, mid)
    [stored] = [e for e in await history(http, bob, thread_id) if e.get("message_id") == mid
                and e["type"] == "message"]
    assert stored["content"] == {"url": view["url"], "upload_id": view["upload_id"],
                                 "width": 80}
    # The stored content sent back as it is (url beside upload_id) is no change.
    assert seq_of(await edit(http, alice, thread_id, mid, content=stored["content"]),
                  thread_id, mid) is None
    assert seq_of(await http.delete(msg_url(thread_id, mid), headers=alice.auth), thread_id, mid)
    for who in (alice, bob):
        assert_error(await http.get(view["url"], headers=who.auth), 404, 4007,
                     "upload_not_found")
    assert len(before - stored_files(server.settings)) == 1  # `other`, never sent, stays
    assert await sql(server, "SELECT id FROM upload WHERE id = ?", view["upload_id"]) == []
    assert await sql(server, "SELECT id FROM message_file WHERE message_id = ?", mid) == []


async def test_edit_versions_and_refusals(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    mid, _ = await post(http, alice, thread_id, "v0")
    edits_url = f"{msg_url(thread_id, mid)}/edits"
    never = await http.get(edits_url, headers=bob.auth)
    assert never.status_code == 200, never.text
    [only] = never.json()["data"]
    assert (only["version"], only["body"], only["content"]) == (0, "v0", None)
    sent_at = only["edited_at"]
    assert_error(await edit(http, bob, thread_id, mid, body="mine now"), 403, 4005,
                 "not_your_message")
    for body, code, error in (({"body": ""}, 4003, "content_invalid"),
                              ({"body": "  \n"}, 4003, "content_invalid"),
                              ({"body": "a\u0000b"}, 4003, "content_invalid"),
                              ({"body": "x" * 8001}, 4003, "content_invalid"),
                              ({"content": {"url": "https://x.test/a.png"}}, 4003,
                               "content_invalid"),
                              ({}, 1001, "invalid_parameter"),
                              ({"body": 5}, 1001, "invalid_parameter"),
                              ({"content": "text"}, 1001, "invalid_parameter")):
        assert_error(await edit(http, alice, thread_id, mid, **body), 400, code, error)
    assert_error(await edit(http, mallory, thread_id, mid, body="x"), 403, 3003, "not_a_member")
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        s1 = seq_of(await edit(http, alice, thread_id, mid, body="v1"), thread_id, mid)
        event = await next_event(device, lambda t, e: e["type"] == "message_edit")
    assert (event["seq"], event["message_id"], event["body"], event["content"]) == (
        s1, mid, "v1", None)
    assert seq_of(await edit(http, alice, thread_id, mid, body="v1"), thread_id, mid) is None
    s2 = seq_of(await edit(http, alice, thread_id, mid, body="v2"), thread_id, mid)
    assert s1 is not None
    assert s2 == s1 + 1
    [message] = [e for e in await history(http, bob, thread_id)
                 if e.get("message_id") == mid and e["type"] == "message"]
    assert message["body"] == "v2"
    assert message["edited_at"] >= event["edited_at"] >= sent_at
    versions = (await http.get(edits_url, headers=bob.auth)).json()["data"]
    assert [(v["version"], v["body"]) for v in versions] == [(0, "v0"), (1, "v1"), (2, "v2")]
    assert versions[0]["edited_at"] == sent_at
    assert versions[1]["edited_at"] == event["edited_at"] <= versions[2]["edited_at"]
    assert versions[2]["edited_at"] == message["edited_at"]
    assert_error(await http.get(edits_url, headers=mallory.auth), 403, 3003, "not_a_member")
    assert_error(await http.get(f"{msg_url(thread_id, 'm0000nope')}/edits", headers=bob.auth),
                 404, 4001, "message_not_found")
    # Content of a typed message: validated for its type; the window.
    img, _ = await post(http, alice, thread_id, "caption", type="image",
                        content={"url": "https://example.test/a.png", "width": 3, "height": 2})
    assert_error(await edit(http, alice, thread_id, img, content={"lat": 1.0, "lng": 2.0}),
                 400, 4003, "content_invalid")
    new = {"url": "https://example.test/b.png", "width": 4, "height": 5}
    assert seq_of(await edit(http, alice, thread_id, img, content=new), thread_id, img)
    versions = (await http.get(f"{msg_url(thread_id, img)}/edits",
                               headers=bob.auth)).json()["data"]
    assert [(v["body"], v["content"]["url"]) for v in versions] == [
        ("caption", "https://example.test/a.png"), ("caption", "https://example.test/b.png")]
    await age_message(server, img)
    assert_error(await edit(http, alice, thread_id, img, body="late"), 403, 4004,
                 "window_passed")


async def test_unsending_a_poll_closes_it(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    created = await http.post(f"/api/threads/{thread_id}/polls", headers=alice.auth,
                              json={"question": "lunch?", "options": ["soup", "salad"]})
    assert created.status_code in (200, 201), created.text
    poll = created.json()["data"]
    poll_id, mid = poll["poll_id"], poll["message_id"]
    assert_error(await edit(http, alice, thread_id, mid, content={"question": "x"}), 400, 4003,
                 "content_invalid")
    assert seq_of(await http.delete(msg_url(thread_id, mid), headers=alice.auth), thread_id, mid)
    [(closed,)] = await sql(server, "SELECT closed FROM poll WHERE id = ?", poll_id)
    assert bool(closed)
    voted = await http.post(f"/api/threads/{thread_id}/polls/{poll_id}/votes", headers=bob.auth,
                            json={"option_ids": [0]})
    assert voted.status_code in (403, 404), voted.text
