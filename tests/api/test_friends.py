"""Friend requests, friendships and blocks over real HTTP, with their events on the real broker."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import Account, create_group, mqtt_session, next_event, register, unique_id
from tests.stacks import Stack

REQUESTS = "/api/friends/requests"


async def send_request(http: httpx.AsyncClient, sender: Account, to: Account,
                       message: str = "hi") -> dict[str, Any]:
    response = await http.post(REQUESTS, headers=sender.auth,
                               json={"user_id": to.user_id, "message": message})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def befriend(http: httpx.AsyncClient, a: Account, b: Account) -> None:
    sent = await send_request(http, a, b)
    accepted = await http.post(f"{REQUESTS}/{sent['id']}/accept", headers=b.auth)
    assert accepted.status_code == 200, accepted.text


async def friend_ids(http: httpx.AsyncClient, account: Account) -> list[str]:
    response = await http.get("/api/friends", headers=account.auth)
    assert response.status_code == 200, response.text
    return [f["user"]["id"] for f in response.json()["data"]]


async def requests_of(http: httpx.AsyncClient, account: Account, **params: str
                      ) -> list[dict[str, Any]]:
    response = await http.get(REQUESTS, headers=account.auth, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def soft_delete(server: Stack, user_id: str) -> None:
    """Mark a user deleted the way account deletion does (`deleted_at` set), straight in the
    stack's database."""
    now = datetime.now(UTC)
    url = server.settings.db_url
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").split("?", 1)[0]

        def update() -> None:
            with sqlite3.connect(path, timeout=10) as db:
                db.execute("UPDATE user_account SET deleted_at = ? WHERE id = ?",
                           (now.isoformat(sep=" "), user_id))
            db.close()

        await asyncio.to_thread(update)
        return
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("UPDATE user_account SET deleted_at = $1 WHERE id = $2", now, user_id)
    finally:
        await conn.close()


def user_topic(server: Stack, account: Account) -> str:
    return f"{server.settings.topic_prefix}/u/{account.user_id}"


def of_type(kind: str) -> Any:
    return lambda t, e: e.get("type") == kind


async def test_request_reaches_the_recipient_and_acceptance_the_sender(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    async with mqtt_session(server.settings, alice) as a, mqtt_session(server.settings, bob) as b:
        await a.subscribe(user_topic(server, alice), qos=1)
        await b.subscribe(user_topic(server, bob), qos=1)
        sent = await send_request(http, alice, bob, "  hello bob  ")
        assert sent["from"]["id"] == alice.user_id
        assert sent["to"]["id"] == bob.user_id
        assert (sent["message"], sent["status"], sent["decided_at"]) == ("hello bob", "pending",
                                                                        None)
        assert sent["created_at"]
        event = await next_event(b, of_type("friend_request"))
        assert event["request_id"] == sent["id"]
        assert event["message"] == "hello bob"
        assert event["from"]["id"] == alice.user_id
        assert event["from"]["deleted"] is False
        assert isinstance(event["created_at"], int)

        accepted = await http.post(f"{REQUESTS}/{sent['id']}/accept", headers=bob.auth)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["data"]["status"] == "accepted"
        assert accepted.json()["data"]["decided_at"]
        event = await next_event(a, of_type("friend_request_accepted"))
        assert event["request_id"] == sent["id"]
        assert event["user"]["id"] == bob.user_id
        assert isinstance(event["decided_at"], int)

    assert await friend_ids(http, alice) == [bob.user_id]
    assert await friend_ids(http, bob) == [alice.user_id]
    listed = (await http.get("/api/friends", headers=alice.auth)).json()["data"][0]
    assert listed["groups"] == []
    assert listed["since"]
    detail = await http.get(f"/api/friends/{bob.user_id}", headers=alice.auth)
    assert detail.json()["data"]["user"]["id"] == bob.user_id
    assert detail.json()["data"]["groups"] == []
    assert [r["id"] for r in await requests_of(http, bob, direction="incoming")] == [sent["id"]]
    assert await requests_of(http, bob, direction="outgoing") == []
    assert [r["id"] for r in await requests_of(http, alice, direction="outgoing",
                                               status="accepted")] == [sent["id"]]
    assert await requests_of(http, alice, status="pending") == []
    assert [r["id"] for r in await requests_of(http, alice)] == [sent["id"]]


async def test_request_refusals_leave_everything_as_it_was(http: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    sent = await send_request(http, alice, bob)

    async def ask(sender: Account, body: dict[str, Any]) -> httpx.Response:
        return await http.post(REQUESTS, headers=sender.auth, json=body)

    assert_error(await ask(alice, {"user_id": alice.user_id}), 400, 1001, "invalid_parameter")
    assert_error(await ask(alice, {"user_id": "nobody-" + unique_id()}), 404, 2006,
                 "user_not_found")
    assert_error(await ask(alice, {"user_id": carol.user_id, "message": "x" * 201}), 400, 1001,
                 "invalid_parameter")
    assert_error(await ask(alice, {"user_id": carol.user_id, "message": 5}), 400, 1001,
                 "invalid_parameter")
    assert_error(await ask(alice, {}), 400, 1001, "invalid_parameter")
    assert_error(await ask(alice, {"user_id": bob.user_id}), 409, 1011, "request_exists")
    # Only the recipient decides; others do not even see the request.
    accept, reject = f"{REQUESTS}/{sent['id']}/accept", f"{REQUESTS}/{sent['id']}/reject"
    assert_error(await http.post(accept, headers=alice.auth), 403, 1004, "forbidden")
    assert_error(await http.post(reject, headers=alice.auth), 403, 1004, "forbidden")
    assert_error(await http.post(accept, headers=carol.auth), 404, 1005, "not_found")
    for missing in ("999999999", "99999999999999999999999"):
        assert_error(await http.post(f"{REQUESTS}/{missing}/accept", headers=bob.auth), 404,
                     1005, "not_found")
    assert_error(await http.post(f"{REQUESTS}/abc/accept", headers=bob.auth), 404, 1005,
                 "not_found")
    for params in ({"direction": "sideways"}, {"status": "maybe"}):
        assert_error(await http.get(REQUESTS, headers=bob.auth, params=params), 400, 1001,
                     "invalid_parameter")
    assert_error(await http.get(REQUESTS), 401, 2001, "token_invalid")
    # Nothing changed: one pending request, no friends.
    [still] = await requests_of(http, bob)
    assert (still["id"], still["status"]) == (sent["id"], "pending")
    assert await friend_ids(http, alice) == []

    assert (await http.post(accept, headers=bob.auth)).status_code == 200
    assert_error(await ask(alice, {"user_id": bob.user_id}), 409, 1007, "already_friends")
    assert_error(await ask(bob, {"user_id": alice.user_id}), 409, 1007, "already_friends")
    assert_error(await http.post(accept, headers=bob.auth), 400, 1001, "invalid_parameter")
    assert_error(await http.post(reject, headers=bob.auth), 400, 1001, "invalid_parameter")
    assert [r["status"] for r in await requests_of(http, bob)] == ["accepted"]
    assert await friend_ids(http, bob) == [alice.user_id]


async def test_rejection_is_told_and_a_new_request_may_follow(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    sent = await send_request(http, alice, bob)
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(user_topic(server, alice), qos=1)
        rejected = await http.post(f"{REQUESTS}/{sent['id']}/reject", headers=bob.auth)
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["data"]["status"] == "rejected"
        event = await next_event(a, of_type("friend_request_rejected"))
    assert (event["request_id"], event["user_id"]) == (sent["id"], bob.user_id)
    assert await friend_ids(http, alice) == []
    again = await send_request(http, alice, bob, "please?")
    assert again["status"] == "pending"
    assert [r["status"] for r in await requests_of(http, alice, direction="outgoing")] == [
        "pending", "rejected"]  # newest first
    assert [r["id"] for r in await requests_of(http, bob, status="rejected")] == [sent["id"]]


async def test_request_back_accepts_the_pending_one(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    first = await send_request(http, alice, bob)
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(user_topic(server, alice), qos=1)
        back = await send_request(http, bob, alice, "yes!")
        assert back["status"] == "accepted"
        event = await next_event(a, of_type("friend_request_accepted"))
    assert event["request_id"] == first["id"]
    assert event["user"]["id"] == bob.user_id
    assert await friend_ids(http, alice) == [bob.user_id]
    assert await friend_ids(http, bob) == [alice.user_id]
    assert {r["status"] for r in await requests_of(http, alice)} == {"accepted"}


async def test_removing_a_friend_is_both_ways_and_told(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob = await register(http), await register(http)
    await befriend(http, alice, bob)
    groups = []
    for owner, friend in ((alice, bob), (bob, alice)):
        made = await http.post("/api/friends/groups", headers=owner.auth, json={"name": "close"})
        group_id = made.json()["data"]["id"]
        added = await http.post(f"/api/friends/groups/{group_id}/members", headers=owner.auth,
                                json={"user_ids": [friend.user_id]})
        assert added.status_code == 200, added.text
        groups.append((owner, group_id))
    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(user_topic(server, bob), qos=1)
        removed = await http.delete(f"/api/friends/{bob.user_id}", headers=alice.auth)
        assert removed.json() == {"code": 0, "msg": "ok", "data": {"user_id": bob.user_id}}
        event = await next_event(b, of_type("friend_removed"))
    assert event == {"type": "friend_removed", "user_id": alice.user_id}
    assert await friend_ids(http, alice) == []
    assert await friend_ids(http, bob) == []
    for owner, group_id in groups:  # each left the other's group; the groups stay
        members = await http.get(f"/api/friends/groups/{group_id}/members", headers=owner.auth)
        assert members.json()["data"] == []
    assert_error(await http.delete(f"/api/friends/{bob.user_id}", headers=alice.auth), 404,
                 1005, "not_found")
    assert_error(await http.get(f"/api/friends/{bob.user_id}", headers=alice.auth), 404, 1005,
                 "not_found")
    assert_error(await http.get("/api/friends/nobody-x", headers=alice.auth), 404, 2006,
                 "user_not_found")
    assert_error(await http.delete("/api/friends/nobody-x", headers=alice.auth), 404, 2006,
                 "user_not_found")
    # They may become friends again.
    await befriend(http, bob, alice)
    assert await friend_ids(http, alice) == [bob.user_id]


async def test_block_ends_the_friendship_and_refuses_requests_and_direct_messages(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    await befriend(http, alice, bob)
    direct = await http.post("/api/threads", headers=bob.auth,
                             json={"type": "direct", "user_ids": [alice.user_id]})
    direct_id = direct.json()["data"]["thread_id"]
    group_id = await create_group(http, alice, bob)
    pending = await send_request(http, carol, alice)

    async with mqtt_session(server.settings, bob) as b:
        await b.subscribe(user_topic(server, bob), qos=1)
        blocked = await http.post("/api/blocks", headers=alice.auth, json={"user_id": bob.user_id})
        assert blocked.status_code == 201, blocked.text
        assert blocked.json()["data"]["user"]["id"] == bob.user_id
        # Bob is told nothing: the next event he gets is one published after the block.
        dave = await register(http)
        await send_request(http, dave, bob)
        first = await next_event(b, lambda t, e: True)
        assert (first["type"], first["from"]["id"]) == ("friend_request", dave.user_id)

        # His messages to Alice's direct thread are refused, over HTTP and over MQTT.
        send = f"/api/threads/{direct_id}/messages"
        assert_error(await http.post(send, headers=bob.auth, json={"body": "hey"}), 403, 1009,
                     "blocked")
        await b.publish(f"{server.settings.topic_prefix}/up/{bob.user_id}", json.dumps({
            "op": "send", "req": "blocked-1", "thread_id": direct_id,
            "client_msg_id": unique_id("c"), "body": "hey"}), qos=1)
        error = await next_event(b, lambda t, e: e.get("req") == "blocked-1")
        assert (error["type"], error["code"], error["error"]) == ("error", 1009, "blocked")
    # Alice cannot write there either while she blocks him.
    assert_error(await http.post(send, headers=alice.auth, json={"body": "hey"}), 403, 1009,
                 "blocked")
    history = await http.get(send, headers=alice.auth)
    assert history.json()["data"] == []
    # The group they share is unaffected.
    in_group = await http.post(f"/api/threads/{group_id}/messages", headers=bob.auth,
                               json={"body": "still here"})
    assert in_group.status_code == 201, in_group.text

    assert await friend_ids(http, alice) == []
    assert await friend_ids(http, bob) == []
    for sender, to in ((bob, alice), (alice, bob)):
        assert_error(await http.post(REQUESTS, headers=sender.auth,
                                     json={"user_id": to.user_id}), 403, 1009, "blocked")
    # Blocking again changes nothing; the list shows the block.
    again = await http.post("/api/blocks", headers=alice.auth, json={"user_id": bob.user_id})
    assert again.status_code == 200
    listed = (await http.get("/api/blocks", headers=alice.auth)).json()["data"]
    assert [b["user"]["id"] for b in listed] == [bob.user_id]
    assert (await http.get("/api/blocks", headers=bob.auth)).json()["data"] == []

    # Blocking rejects the pending requests between the two.
    await http.post("/api/blocks", headers=alice.auth, json={"user_id": carol.user_id})
    [carols] = await requests_of(http, carol, direction="outgoing")
    assert (carols["id"], carols["status"]) == (pending["id"], "rejected")
    assert_error(await http.post(f"{REQUESTS}/{pending['id']}/accept", headers=alice.auth),
                 400, 1001, "invalid_parameter")
    # No new direct thread with someone blocked (either way), nor with someone who blocked you.
    for creator, other in ((carol, alice), (alice, carol), (bob, alice)):
        assert_error(await http.post("/api/threads", headers=creator.auth,
                                     json={"type": "direct", "user_ids": [other.user_id]}),
                     403, 1009, "blocked")

    # Unblocking lifts the rules but does not restore the friendship.
    unblocked = await http.delete(f"/api/blocks/{bob.user_id}", headers=alice.auth)
    assert unblocked.json()["data"] == {"user_id": bob.user_id}
    assert_error(await http.delete(f"/api/blocks/{bob.user_id}", headers=alice.auth), 404, 1005,
                 "not_found")
    assert await friend_ids(http, alice) == []
    assert (await http.post(send, headers=bob.auth, json={"body": "hi again"})).status_code == 201
    await send_request(http, bob, alice)


async def test_block_refusals(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    assert_error(await http.post("/api/blocks", headers=alice.auth,
                                 json={"user_id": alice.user_id}), 400, 1001, "invalid_parameter")
    assert_error(await http.post("/api/blocks", headers=alice.auth, json={"user_id": "nobody-x"}),
                 404, 2006, "user_not_found")
    assert_error(await http.post("/api/blocks", headers=alice.auth, json={}), 400, 1001,
                 "invalid_parameter")
    assert_error(await http.delete("/api/blocks/nobody-x", headers=alice.auth), 404, 1005,
                 "not_found")
    assert (await http.get("/api/blocks", headers=alice.auth)).json()["data"] == []


async def test_deleted_users_stay_listed_but_take_no_new_requests(
    server: Stack, http: httpx.AsyncClient
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    await befriend(http, alice, bob)
    pending = await send_request(http, carol, alice)
    await soft_delete(server, bob.user_id)
    await soft_delete(server, carol.user_id)
    [friend] = (await http.get("/api/friends", headers=alice.auth)).json()["data"]
    assert friend["user"]["id"] == bob.user_id
    assert (friend["user"]["name"], friend["user"]["deleted"]) == ("Deleted user", True)
    [incoming] = await requests_of(http, alice, direction="incoming")
    assert incoming["from"]["deleted"] is True
    assert_error(await http.post(f"{REQUESTS}/{pending['id']}/accept", headers=alice.auth), 404,
                 2006, "user_not_found")
    dave = await register(http)
    assert_error(await http.post(REQUESTS, headers=dave.auth, json={"user_id": carol.user_id}),
                 404, 2006, "user_not_found")
    # Rejecting a deleted user's request still works.
    rejected = await http.post(f"{REQUESTS}/{pending['id']}/reject", headers=alice.auth)
    assert rejected.json()["data"]["status"] == "rejected"


async def test_concurrent_requests_make_one_pending_request_or_one_friendship(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    same = await asyncio.gather(*(
        http.post(REQUESTS, headers=alice.auth, json={"user_id": bob.user_id})
        for _ in range(5)))
    assert sorted(r.status_code for r in same) == [201, 409, 409, 409, 409]
    assert len(await requests_of(http, bob, status="pending")) == 1
    # Two users asking each other at the same moment end up friends, with nothing pending.
    crossed = await asyncio.gather(
        http.post(REQUESTS, headers=alice.auth, json={"user_id": carol.user_id}),
        http.post(REQUESTS, headers=carol.auth, json={"user_id": alice.user_id}))
    assert [r.status_code for r in crossed] == [201, 201]
    assert sorted(r.json()["data"]["status"] for r in crossed) == ["accepted", "pending"]
    assert await friend_ids(http, carol) == [alice.user_id]
    assert {r["status"] for r in await requests_of(http, carol)} == {"accepted"}
