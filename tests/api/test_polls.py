"""Polls over real HTTP and MQTT on both stacks (docs/messages.md): creating one (and the bodies
refused), votes that replace and retract, single and multiple choice, the `vote` op with its ack
and its 4006 error event, closing (by whom), a `closes_at` that passes, the poll message's
content kept current in history, and the `poll_update` entries' own, gapless seqs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import Account, create_group, mqtt_session, next_event, register
from tests.stacks import Stack


async def create_poll(http: httpx.AsyncClient, who: Account, thread_id: str,
                      **body: Any) -> dict[str, Any]:
    body = {"question": "Lunch?", "options": ["pizza", "sushi", "salad"], **body}
    response = await http.post(f"/api/threads/{thread_id}/polls", headers=who.auth, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    assert set(data) == {"poll_id", "message_id", "seq", "thread_id"}
    return data


async def vote(http: httpx.AsyncClient, who: Account, thread_id: str, poll_id: str,
               option_ids: list[Any]) -> httpx.Response:
    return await http.post(f"/api/threads/{thread_id}/polls/{poll_id}/votes", headers=who.auth,
                           json={"option_ids": option_ids})


async def voted(http: httpx.AsyncClient, who: Account, thread_id: str, poll_id: str,
                option_ids: list[int]) -> int | None:
    response = await vote(http, who, thread_id, poll_id, option_ids)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"thread_id", "message_id", "seq"}
    seq: int | None = data["seq"]
    return seq


async def timeline(http: httpx.AsyncClient, who: Account, thread_id: str,
                   ) -> list[dict[str, Any]]:
    response = await http.get(f"/api/threads/{thread_id}/messages", headers=who.auth,
                              params={"limit": 200})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


async def poll_message(http: httpx.AsyncClient, who: Account, thread_id: str,
                       message_id: str) -> dict[str, Any]:
    [message] = [e for e in await timeline(http, who, thread_id)
                 if e["type"] == "message" and e["message_id"] == message_id]
    return message


def counts(message: dict[str, Any]) -> list[int]:
    return [o["votes"] for o in message["content"]["options"]]


async def test_create_shows_a_poll_message(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    closes_at = int(time.time() * 1000) + 3_600_000
    poll = await create_poll(http, alice, thread_id, options=[" pizza ", "sushi"],
                             multiple=True, closes_at=closes_at)
    assert poll["thread_id"] == thread_id
    message = await poll_message(http, bob, thread_id, poll["message_id"])
    assert (message["msg_type"], message["body"], message["seq"]) == ("poll", "Lunch?",
                                                                     poll["seq"])
    assert message["sender_id"] == alice.user_id
    assert message["content"] == {
        "poll_id": poll["poll_id"], "question": "Lunch?", "multiple": True, "closed": False,
        "closes_at": closes_at,
        "options": [{"option_id": 0, "text": "pizza", "votes": 0},
                    {"option_id": 1, "text": "sushi", "votes": 0}]}
    view = await http.get(f"/api/threads/{thread_id}/polls/{poll['poll_id']}", headers=bob.auth)
    assert view.status_code == 200, view.text
    data = view.json()["data"]
    assert (data["creator_id"], data["message_id"], data["closed"]) == (
        alice.user_id, poll["message_id"], False)
    assert data["options"][1] == {"option_id": 1, "text": "sushi", "votes": 0, "voters": []}


async def test_create_refusals(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    url = f"/api/threads/{thread_id}/polls"
    past = int(time.time() * 1000) - 1000
    for body in (
        {"question": "q", "options": ["only one"]},
        {"question": "q", "options": [f"o{i}" for i in range(11)]},
        {"question": "q", "options": ["same", "Same "]},
        {"question": "", "options": ["a", "b"]},
        {"question": "   ", "options": ["a", "b"]},
        {"question": "q" * 301, "options": ["a", "b"]},
        {"question": "q", "options": ["a", "b" * 101]},
        {"question": "q", "options": ["a", ""]},
        {"question": "q\x00", "options": ["a", "b"]},
        {"question": "q", "options": ["a", "b"], "closes_at": past},
        {"question": "q", "options": ["a", "b"], "closes_at": "soon"},
        {"question": "q", "options": ["a", "b"], "multiple": "yes"},
        {"question": "q", "options": "a,b"},
        {"options": ["a", "b"]},
    ):
        assert_error(await http.post(url, headers=alice.auth, json=body), 400, 1001,
                     "invalid_parameter")
    good = {"question": "q", "options": ["a", "b"]}
    assert_error(await http.post(url, headers=mallory.auth, json=good), 403, 3003,
                 "not_a_member")
    assert_error(await http.post("/api/threads/tnope/polls", headers=alice.auth, json=good),
                 404, 3001, "thread_not_found")
    assert (await http.post(url, json=good)).status_code == 401
    # Nothing above reached the timeline: only the group's creation event is there.
    assert [e["type"] for e in await timeline(http, alice, thread_id)] == ["event"]
    poll = await create_poll(http, alice, thread_id, options=[f"o{i}" for i in range(10)])
    assert poll["seq"] == 2


async def test_votes_replace_retract_and_keep_the_content_current(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob, carol)
    single = await create_poll(http, alice, thread_id)
    pid, mid = single["poll_id"], single["message_id"]
    first = await voted(http, bob, thread_id, pid, [0])
    assert first is not None
    assert first == single["seq"] + 1
    assert await voted(http, bob, thread_id, pid, [0]) is None  # no change, no entry
    assert await voted(http, carol, thread_id, pid, [0]) == first + 1
    assert await voted(http, bob, thread_id, pid, [2]) == first + 2  # replaces
    assert counts(await poll_message(http, alice, thread_id, mid)) == [1, 0, 1]
    for bad in ([0, 1], [3], [0, 0], [-1], ["0"], [2**63]):
        assert_error(await vote(http, bob, thread_id, pid, bad), 400, 1001, "invalid_parameter")
    assert await voted(http, carol, thread_id, pid, []) == first + 3  # retracts
    assert await voted(http, carol, thread_id, pid, []) is None
    assert counts(await poll_message(http, alice, thread_id, mid)) == [0, 0, 1]

    multi = await create_poll(http, alice, thread_id, multiple=True)
    assert await voted(http, bob, thread_id, multi["poll_id"], [0, 2]) is not None
    assert await voted(http, carol, thread_id, multi["poll_id"], [2]) is not None
    assert await voted(http, bob, thread_id, multi["poll_id"], [2, 0]) is None  # same set
    view = (await http.get(f"/api/threads/{thread_id}/polls/{multi['poll_id']}",
                           headers=carol.auth)).json()["data"]
    assert [(o["votes"], o["voters"]) for o in view["options"]] == [
        (1, [bob.user_id]), (0, []), (2, [bob.user_id, carol.user_id])]
    assert counts(await poll_message(http, alice, thread_id, multi["message_id"])) == [1, 0, 2]

    entries = await timeline(http, carol, thread_id)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))  # gapless
    updates = [e for e in entries if e["type"] == "poll_update"]
    assert len(updates) == 6
    last_single = [u for u in updates if u["poll_id"] == pid][-1]
    assert last_single["message_id"] == mid
    assert last_single["closed"] is False
    assert last_single["options"] == [
        {"option_id": 0, "votes": 0, "voters": []}, {"option_id": 1, "votes": 0, "voters": []},
        {"option_id": 2, "votes": 1, "voters": [bob.user_id]}]


async def test_who_may_vote_and_see(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob)
    other_thread = await create_group(http, mallory, bob)
    poll = await create_poll(http, alice, thread_id)
    pid = poll["poll_id"]
    assert_error(await vote(http, mallory, thread_id, pid, [0]), 403, 3003, "not_a_member")
    assert_error(await vote(http, mallory, thread_id, "pnope", [0]), 403, 3003, "not_a_member")
    assert_error(await vote(http, bob, thread_id, "pnope", [0]), 404, 4001, "message_not_found")
    # The poll is only found in its own thread.
    assert_error(await vote(http, bob, other_thread, pid, [0]), 404, 4001, "message_not_found")
    assert_error(await vote(http, bob, "tnope", pid, [0]), 404, 3001, "thread_not_found")
    assert_error(await http.get(f"/api/threads/{thread_id}/polls/{pid}", headers=mallory.auth),
                 403, 3003, "not_a_member")
    assert_error(await http.post(f"/api/threads/{thread_id}/polls/{pid}/close",
                                 headers=mallory.auth), 403, 3003, "not_a_member")
    assert_error(await http.post(f"/api/threads/{thread_id}/polls/{pid}/votes",
                                 headers=bob.auth, json={}), 400, 1001, "invalid_parameter")


async def test_close_and_closes_at(http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob, carol)  # alice owns it
    poll = await create_poll(http, bob, thread_id)
    pid, mid = poll["poll_id"], poll["message_id"]
    await voted(http, carol, thread_id, pid, [1])
    close_url = f"/api/threads/{thread_id}/polls/{pid}/close"
    assert_error(await http.post(close_url, headers=carol.auth), 403, 1004, "forbidden")
    closed = await http.post(close_url, headers=bob.auth)  # the creator
    assert closed.status_code == 200, closed.text
    assert closed.json()["data"]["seq"] is not None
    again = await http.post(close_url, headers=alice.auth)
    assert again.status_code == 200
    assert again.json()["data"]["seq"] is None
    assert_error(await vote(http, carol, thread_id, pid, [0]), 403, 4006, "poll_closed")
    assert_error(await vote(http, carol, thread_id, pid, []), 403, 4006, "poll_closed")
    message = await poll_message(http, carol, thread_id, mid)
    assert message["content"]["closed"] is True
    assert counts(message) == [0, 1, 0]
    [update] = [e for e in await timeline(http, carol, thread_id)
                if e["type"] == "poll_update" and e["closed"]]
    assert update["options"][1] == {"option_id": 1, "votes": 1, "voters": [carol.user_id]}

    # The owner (an admin) closes someone else's poll.
    other = await create_poll(http, carol, thread_id)
    by_owner = await http.post(f"/api/threads/{thread_id}/polls/{other['poll_id']}/close",
                               headers=alice.auth)
    assert by_owner.status_code == 200
    assert by_owner.json()["data"]["seq"] is not None

    soon = await create_poll(http, alice, thread_id, closes_at=int(time.time() * 1000) + 1500)
    assert await voted(http, bob, thread_id, soon["poll_id"], [0]) is not None
    await asyncio.sleep(2)
    assert_error(await vote(http, bob, thread_id, soon["poll_id"], [1]), 403, 4006,
                 "poll_closed")
    view = (await http.get(f"/api/threads/{thread_id}/polls/{soon['poll_id']}",
                           headers=bob.auth)).json()["data"]
    assert view["closed"] is True


async def test_vote_op_over_mqtt(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    poll = await create_poll(http, alice, thread_id)
    pid = poll["poll_id"]
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await device.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await device.publish(f"{prefix}/up/{bob.user_id}", qos=1, payload=json.dumps(
            {"op": "vote", "req": "v1", "thread_id": thread_id, "poll_id": pid,
             "option_ids": [1]}))
        # The entry is published on commit, the ack after: either may arrive first.
        seen: list[tuple[str, dict[str, Any]]] = []
        ack = await next_event(device, lambda t, e: e.get("req") == "v1", seen=seen)
        assert ack["type"] == "ack"
        assert ack["data"] == {"thread_id": thread_id, "message_id": poll["message_id"],
                               "seq": poll["seq"] + 1}
        [update] = [e for _, e in seen if e["type"] == "poll_update"] or [
            await next_event(device, lambda t, e: e["type"] == "poll_update")]
        assert (update["seq"], update["poll_id"], update["closed"]) == (poll["seq"] + 1, pid,
                                                                       False)
        assert update["options"][1] == {"option_id": 1, "votes": 1, "voters": [bob.user_id]}
        # Unknown option, then the closed poll: error events that carry the req.
        await device.publish(f"{prefix}/up/{bob.user_id}", qos=1, payload=json.dumps(
            {"op": "vote", "req": "v2", "thread_id": thread_id, "poll_id": pid,
             "option_ids": [7]}))
        error = await next_event(device, lambda t, e: e.get("req") == "v2")
        assert (error["type"], error["code"]) == ("error", 1001)
        closed = await http.post(f"/api/threads/{thread_id}/polls/{pid}/close",
                                 headers=alice.auth)
        assert closed.status_code == 200, closed.text
        await device.publish(f"{prefix}/up/{bob.user_id}", qos=1, payload=json.dumps(
            {"op": "vote", "req": "v3", "thread_id": thread_id, "poll_id": pid,
             "option_ids": [0]}))
        error = await next_event(device, lambda t, e: e.get("req") == "v3")
        assert (error["type"], error["code"], error["error"]) == ("error", 4006, "poll_closed")
    view = (await http.get(f"/api/threads/{thread_id}/polls/{pid}", headers=alice.auth)).json()
    assert [o["votes"] for o in view["data"]["options"]] == [0, 1, 0]
