"""Read state and receipts over real HTTP on both stacks (docs/design.md section 10):
`POST …/delivered` moves forward only, clamps, and publishes one `delivery_receipt` per move;
`GET …/messages/{mid}/receipts` in a group of five with mixed positions, the sender excluded, a
later joiner in no list, and its refusals; reading implies delivery; `POST /api/threads/read-all`
across several threads, with the events of one read per thread, seen by a real MQTT client."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_threadlist import patch
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack


async def post_message(http: httpx.AsyncClient, account: Account, thread_id: str,
                       ) -> tuple[str, int]:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=account.auth,
                               json={"client_msg_id": unique_id("c"), "body": "hello"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return str(data["message_id"]), int(data["seq"])


async def deliver(http: httpx.AsyncClient, account: Account, thread_id: str, seq: int) -> int:
    response = await http.post(f"/api/threads/{thread_id}/delivered", headers=account.auth,
                               json={"seq": seq})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) == {"thread_id", "delivered_seq"}
    assert data["thread_id"] == thread_id
    return int(data["delivered_seq"])


async def read(http: httpx.AsyncClient, account: Account, thread_id: str, seq: int) -> None:
    response = await http.post(f"/api/threads/{thread_id}/read", headers=account.auth,
                               json={"seq": seq})
    assert response.status_code == 200, response.text


async def positions(http: httpx.AsyncClient, viewer: Account, thread_id: str,
                    ) -> dict[str, tuple[int, int]]:
    """Each participant's (read_seq, delivered_seq)."""
    response = await http.get(f"/api/threads/{thread_id}", headers=viewer.auth)
    assert response.status_code == 200, response.text
    return {p["user_id"]: (p["read_seq"], p["delivered_seq"])
            for p in response.json()["data"]["participants"]}


async def receipts(http: httpx.AsyncClient, viewer: Account, thread_id: str, message_id: str,
                   ) -> httpx.Response:
    return await http.get(f"/api/threads/{thread_id}/messages/{message_id}/receipts",
                          headers=viewer.auth)


async def receipt_sets(http: httpx.AsyncClient, viewer: Account, thread_id: str,
                       message_id: str) -> dict[str, set[str]]:
    response = await receipts(http, viewer, thread_id, message_id)
    assert response.status_code == 200, response.text
    data: dict[str, list[str]] = response.json()["data"]
    assert set(data) == {"read_by", "delivered_to", "pending"}
    for users in data.values():
        assert len(users) == len(set(users))
    return {key: set(users) for key, users in data.items()}


async def test_delivered_moves_forward_only_clamps_and_publishes_once_per_move(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    await post_message(http, alice, thread_id)
    _, last = await post_message(http, alice, thread_id)
    seen: list[tuple[str, dict[str, Any]]] = []
    async with mqtt_session(server.settings, alice) as a:
        await a.subscribe(f"{server.settings.topic_prefix}/t/{thread_id}", qos=1)
        assert await deliver(http, bob, thread_id, last - 1) == last - 1
        assert await deliver(http, bob, thread_id, 1) == last - 1  # never back
        assert await deliver(http, bob, thread_id, 10**12) == last  # capped at the last seq
        assert await deliver(http, bob, thread_id, last) == last  # no move, no event
        # One publisher sends the API's events in order: the read's receipt comes after them.
        await read(http, bob, thread_id, last)
        await next_event(a, lambda t, e: e["type"] == "read_receipt", seen=seen)
    receipts_seen = [e for _, e in seen if e["type"] == "delivery_receipt"]
    assert receipts_seen == [
        {"type": "delivery_receipt", "thread_id": thread_id, "user_id": bob.user_id, "seq": s}
        for s in (last - 1, last)]
    assert (await positions(http, alice, thread_id))[bob.user_id] == (last, last)


async def test_delivered_refusals(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    url = f"/api/threads/{thread_id}/delivered"
    assert_error(await http.post(url, headers=mallory.auth, json={"seq": 1}), 403, 3003,
                 "not_a_member")
    for body in ({"seq": -1}, {"seq": "1"}, {"seq": 2**63}, {}, {"seq": 1.5}):
        assert_error(await http.post(url, headers=bob.auth, json=body), 400, 1001,
                     "invalid_parameter")
    assert_error(await http.post("/api/threads/tnope/delivered", headers=bob.auth,
                                 json={"seq": 1}), 404, 3001, "thread_not_found")
    assert (await http.post(url, json={"seq": 1})).status_code == 401
    assert (await positions(http, alice, thread_id))[bob.user_id][1] == 0


async def test_receipts_in_a_group_of_five(http: httpx.AsyncClient) -> None:
    alice, bob, carol, dave, erin = [await register(http) for _ in range(5)]
    thread_id = await create_group(http, alice, bob, carol, dave, erin)
    from_bob, _ = await post_message(http, bob, thread_id)
    first, s1 = await post_message(http, alice, thread_id)
    second, s2 = await post_message(http, alice, thread_id)
    await read(http, bob, thread_id, s2)  # read both
    await deliver(http, carol, thread_id, s2)  # received both, read neither
    await deliver(http, dave, thread_id, s1)  # received the first only
    # erin: nothing. frank joins after both: he was never sent them.
    frank = await register(http)
    added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                            json={"user_ids": [frank.user_id]})
    assert added.status_code == 200, added.text
    who = {a.user_id: name for a, name in
           ((alice, "alice"), (bob, "bob"), (carol, "carol"), (dave, "dave"), (erin, "erin"),
            (frank, "frank"))}

    def named(found: dict[str, set[str]]) -> dict[str, set[str]]:
        return {key: {who[u] for u in users} for key, users in found.items()}

    for viewer in (alice, erin):  # whoever asks gets the same answer
        assert named(await receipt_sets(http, viewer, thread_id, first)) == {
            "read_by": {"bob"}, "delivered_to": {"bob", "carol", "dave"}, "pending": {"erin"}}
        assert named(await receipt_sets(http, viewer, thread_id, second)) == {
            "read_by": {"bob"}, "delivered_to": {"bob", "carol"}, "pending": {"dave", "erin"}}
    # Bob's message: alice's own send moved her read mark past it, so she read it; bob, the
    # sender, is in no list.
    assert named(await receipt_sets(http, alice, thread_id, from_bob)) == {
        "read_by": {"alice"}, "delivered_to": {"alice", "carol", "dave"}, "pending": {"erin"}}
    # Frank joined after them: under `joined` history he cannot read them, so cannot ask.
    assert_error(await receipts(http, frank, thread_id, first), 404, 4001, "message_not_found")
    # His own message has the others as recipients.
    own, _ = await post_message(http, frank, thread_id)
    assert named(await receipt_sets(http, alice, thread_id, own)) == {
        "read_by": set(), "delivered_to": set(),
        "pending": {"alice", "bob", "carol", "dave", "erin"}}


async def test_reading_implies_delivery(http: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob, carol)
    message_id, seq = await post_message(http, alice, thread_id)
    await read(http, bob, thread_id, seq)
    assert (await positions(http, alice, thread_id))[bob.user_id] == (seq, seq)
    found = await receipt_sets(http, carol, thread_id, message_id)
    assert found == {"read_by": {bob.user_id}, "delivered_to": {bob.user_id},
                     "pending": {carol.user_id}}
    # A later delivered mark below the read one is no move.
    assert await deliver(http, bob, thread_id, seq - 1) == seq


async def test_receipts_refusals(http: httpx.AsyncClient) -> None:
    alice, bob, mallory = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    other_thread = await create_group(http, alice, mallory)
    message_id, _ = await post_message(http, alice, thread_id)
    elsewhere, _ = await post_message(http, alice, other_thread)
    assert_error(await receipts(http, mallory, thread_id, message_id), 403, 3003, "not_a_member")
    # Mallory's own thread's message asked for under a thread she is not in: still 3003.
    assert_error(await receipts(http, mallory, thread_id, elsewhere), 403, 3003, "not_a_member")
    # A message of another thread, asked for by a member of both: 4001, not its receipts.
    assert_error(await receipts(http, alice, thread_id, elsewhere), 404, 4001,
                 "message_not_found")
    assert_error(await receipts(http, alice, thread_id, "m" + "0" * 20), 404, 4001,
                 "message_not_found")
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)).json()
    event_id = next(e["message_id"] for e in history["data"] if e["type"] == "event")
    assert_error(await receipts(http, alice, thread_id, event_id), 404, 4001,
                 "message_not_found")
    assert_error(await receipts(http, alice, "tnope", message_id), 404, 3001,
                 "thread_not_found")
    assert (await http.get(f"/api/threads/{thread_id}/messages/{message_id}/receipts")
            ).status_code == 401


async def test_read_all_moves_every_thread_with_the_events_of_one_read(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    group = await create_group(http, bob, alice, carol)
    other = await create_group(http, carol, alice)
    quiet = await create_group(http, carol, alice)  # read already: stays out of the answer
    for sender, thread_id in ((bob, group), (carol, group), (carol, other)):
        await post_message(http, sender, thread_id)
    _, quiet_seq = await post_message(http, carol, quiet)
    await read(http, alice, quiet, quiet_seq)
    await patch(http, alice, quiet, marked_unread=True)
    prefix = server.settings.topic_prefix
    before = await positions(http, alice, group)
    async with mqtt_session(server.settings, alice) as a:
        for thread_id in (group, other, quiet):
            await a.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        response = await http.post("/api/threads/read-all", headers=alice.auth)
        assert response.status_code == 200, response.text
        moved = {m["thread_id"]: m["read_seq"] for m in response.json()["data"]}
        counts = {c["thread_id"]: c for c in
                  (await http.get("/api/sync", headers=alice.auth)).json()["data"]}
        assert set(moved) == {group, other}
        for thread_id, seq in moved.items():
            assert (counts[thread_id]["max_seq"], counts[thread_id]["unread"]) == (seq, 0)
        assert counts[quiet]["unread"] == 0
        wanted = {("read_receipt", t) for t in moved} | {("read", t) for t in moved} | {
            ("thread_settings", quiet)}
        got: dict[tuple[str, str], dict[str, Any]] = {}
        while set(got) != wanted:
            event = await next_event(a, lambda t, e: e["type"] in (
                "read_receipt", "read", "thread_settings"))
            key = (event["type"], event["thread_id"])
            assert key not in got, f"twice: {key}"
            got[key] = event
    for thread_id, seq in moved.items():
        assert (got[("read_receipt", thread_id)]["reader"],
                got[("read_receipt", thread_id)]["seq"]) == (alice.user_id, seq)
        assert got[("read", thread_id)]["seq"] == seq
    assert got[("thread_settings", quiet)]["settings"]["marked_unread"] is False
    after = await positions(http, alice, group)
    assert before[alice.user_id][0] < after[alice.user_id][0] == moved[group]
    assert after[alice.user_id][1] == moved[group]  # delivered too
    # Nothing left to move: an empty answer.
    again = await http.post("/api/threads/read-all", headers=alice.auth)
    assert again.json()["data"] == []
    # Others' marks are untouched.
    assert (await positions(http, bob, group))[carol.user_id] == before[carol.user_id]
