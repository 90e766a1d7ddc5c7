"""Threads, members, history paging, read state and the thread list, over real HTTP."""

from __future__ import annotations

import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import (
    Account,
    create_group,
    granted,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack


async def send(http: httpx.AsyncClient, account: Account, thread_id: str, body: str) -> int:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=account.auth,
                               json={"client_msg_id": unique_id("c"), "body": body})
    assert response.status_code == 201, response.text
    seq: int = response.json()["data"]["seq"]
    return seq


async def test_direct_thread_is_unique_per_pair(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    first = await http.post("/api/threads", headers=alice.auth,
                            json={"type": "direct", "user_ids": [bob.user_id]})
    second = await http.post("/api/threads", headers=bob.auth,
                             json={"type": "direct", "user_ids": [alice.user_id]})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["data"]["thread_id"] == second.json()["data"]["thread_id"]
    assert second.json()["data"]["created"] is False
    assert_error(await http.post("/api/threads", headers=alice.auth,
                                 json={"type": "direct", "user_ids": [alice.user_id]}),
                 400, 1001, "invalid_parameter")
    assert_error(await http.post("/api/threads", headers=alice.auth,
                                 json={"type": "direct", "user_ids": ["nobody-here"]}),
                 404, 2006, "user_not_found")
    thread_id = first.json()["data"]["thread_id"]
    carol = await register(http)
    assert_error(await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                                 json={"user_ids": [carol.user_id]}),
                 400, 1001, "invalid_parameter")


async def test_group_members_add_remove_and_roles(http: httpx.AsyncClient) -> None:
    owner, bob, carol, dave = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob)
    members = f"/api/threads/{thread_id}/members"
    # A plain member adds only their friends (tests/api/test_joining.py); the owner anyone.
    assert_error(await http.post(members, headers=bob.auth, json={"user_ids": [carol.user_id]}),
                 403, 1004, "forbidden")
    added = await http.post(members, headers=owner.auth, json={"user_ids": [carol.user_id]})
    assert added.json()["data"] == {"thread_id": thread_id, "added": [carol.user_id],
                                    "invited": [], "seq": 2}
    assert_error(await http.post(members, headers=bob.auth, json={"user_ids": [carol.user_id]}),
                 409, 3005, "already_member")
    assert_error(await http.post(members, headers=dave.auth, json={"user_ids": [dave.user_id]}),
                 403, 3003, "not_a_member")
    assert_error(await http.post(members, headers=bob.auth, json={"user_ids": []}),
                 400, 1001, "invalid_parameter")
    # A plain member may not remove others; the owner may.
    assert_error(await http.delete(f"{members}/{carol.user_id}", headers=bob.auth),
                 403, 3007, "not_admin")
    removed = await http.delete(f"{members}/{carol.user_id}", headers=owner.auth)
    assert removed.json()["data"]["seq"] == 3
    assert_error(await http.delete(f"{members}/{carol.user_id}", headers=owner.auth),
                 403, 3003, "not_a_member")
    # The owner leaves: ownership passes to the longest-serving member.
    assert (await http.delete(f"{members}/{owner.user_id}", headers=owner.auth)).is_success
    info = (await http.get(f"/api/threads/{thread_id}", headers=bob.auth)).json()["data"]
    assert info["owner_id"] == bob.user_id
    assert [(p["user_id"], p["role"]) for p in info["participants"]] == [(bob.user_id, "owner")]
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=bob.auth)).json()
    assert [(e["seq"], e["logMessageType"]) for e in history["data"]] == [
        (1, "log:subscribe"), (2, "log:subscribe"), (3, "log:unsubscribe"),
        (4, "log:unsubscribe")]
    assert_error(await http.get(f"/api/threads/{thread_id}", headers=owner.auth),
                 403, 3003, "not_a_member")
    assert_error(await http.get("/api/threads/tmissing", headers=bob.auth),
                 404, 3001, "thread_not_found")


async def test_added_member_is_told_and_can_subscribe_at_once(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        result = await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        assert granted(result) == [0x80]
        await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                        json={"user_ids": [bob.user_id]})
        added = await next_event(b, lambda t, e: e.get("type") == "thread_added")
        assert added["thread_id"] == thread_id
        assert added["thread"]["participant_ids"] == [alice.user_id, bob.user_id]
        result = await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        assert granted(result) == [1]
        await send(http, alice, thread_id, "welcome")
        event = await next_event(b, lambda t, e: e.get("type") == "message")
    assert event["body"] == "welcome"


async def test_history_paging(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    for i in range(10):
        await send(http, alice, thread_id, f"b{i}")
    path = f"/api/threads/{thread_id}/messages"

    async def seqs(**params: int) -> list[int]:
        response = await http.get(path, headers=alice.auth, params=params)
        assert response.status_code == 200, response.text
        return [e["seq"] for e in response.json()["data"]]

    assert await seqs() == list(range(1, 12))
    assert await seqs(limit=3) == [9, 10, 11]
    assert await seqs(after_seq=4, limit=3) == [5, 6, 7]
    assert await seqs(before_seq=4) == [1, 2, 3]
    assert await seqs(after_seq=2, before_seq=6) == [3, 4, 5]
    assert await seqs(after_seq=11) == []
    for params in ({"limit": 0}, {"limit": 201}, {"after_seq": -1}, {"before_seq": "x"}):
        assert_error(await http.get(path, headers=alice.auth, params=params), 400, 1001,
                     "invalid_parameter")


async def test_unread_counts_read_marks_and_thread_list(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    quiet = await create_group(http, alice, bob)
    busy = await create_group(http, alice, bob)
    await send(http, alice, busy, "one")
    await send(http, bob, busy, "mine")  # own messages never count as unread
    last = await send(http, alice, busy, "two")
    threads = (await http.get("/api/threads", headers=bob.auth)).json()["data"]
    assert [t["thread_id"] for t in threads] == [busy, quiet]  # newest activity first
    # Sending moved bob's read mark to his own message (seq 3), past "one": only "two" is new.
    assert threads[0]["read_seq"] == 3
    assert threads[0]["unread"] == 1
    assert threads[0]["last_message"]["body"] == "two"
    assert threads[1]["unread"] == 0
    read = await http.post(f"/api/threads/{busy}/read", headers=bob.auth, json={"seq": 999})
    assert read.json()["data"] == {"thread_id": busy, "read_seq": last}  # clamped to max_seq
    back = await http.post(f"/api/threads/{busy}/read", headers=bob.auth, json={"seq": 1})
    assert back.json()["data"]["read_seq"] == last  # never moves backwards
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    assert {"thread_id": busy, "max_seq": last, "read_seq": last, "unread": 0} in sync
    assert_error(await http.post(f"/api/threads/{busy}/read", headers=bob.auth,
                                 json={"seq": "x"}), 400, 1001, "invalid_parameter")


async def test_http_send_rejects_bad_content(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    path = f"/api/threads/{thread_id}/messages"
    for body, code in (({"body": ""}, 4003), ({"body": "x", "type": "hologram"}, 4003),
                       ({"body": "x" * 8001}, 4003), ({"type": "image"}, 4003),
                       ({"body": "x", "reply_to": "mnope"}, 4001), ({"body": 3}, 1001)):
        response = await http.post(path, headers=alice.auth, json=body)
        assert response.json()["code"] == code, (body, response.text)
    original = await send(http, alice, thread_id, "original")
    history = (await http.get(path, headers=alice.auth)).json()["data"]
    target = history[-1]["message_id"]
    reply = await http.post(path, headers=alice.auth, json={"body": "re", "reply_to": target})
    assert reply.status_code == 201
    entries = (await http.get(path, headers=alice.auth, params={"after_seq": original})).json()
    assert entries["data"][0]["type"] == "message_reply"
    assert entries["data"][0]["reply_to"] == target
