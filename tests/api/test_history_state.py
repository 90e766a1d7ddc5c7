"""History in its current state over real HTTP on both stacks (docs/messages.md): reactions from
two users in the order they were added, reply counts that drop when a reply is unsent, the
sender's `status` moving sent -> delivered -> read as the others mark, paging by message id, one
entry, and the replies to a message; with their refusals."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_receipts import deliver, post_message, read
from tests.helpers import Account, create_group, register, unique_id


async def send(http: httpx.AsyncClient, account: Account, thread_id: str, body: str = "hi",
               **extra: Any) -> tuple[str, int]:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=account.auth,
                               json={"client_msg_id": unique_id("c"), "body": body, **extra})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return str(data["message_id"]), int(data["seq"])


async def history(http: httpx.AsyncClient, account: Account, thread_id: str,
                  **params: Any) -> list[dict[str, Any]]:
    response = await http.get(f"/api/threads/{thread_id}/messages", headers=account.auth,
                              params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def entry(http: httpx.AsyncClient, account: Account, thread_id: str,
                message_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/threads/{thread_id}/messages/{message_id}",
                              headers=account.auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def react(http: httpx.AsyncClient, account: Account, thread_id: str, message_id: str,
                emoji: str) -> None:
    response = await http.post(f"/api/threads/{thread_id}/messages/{message_id}/reactions",
                               headers=account.auth, json={"emoji": emoji})
    assert response.status_code in (200, 201), response.text


async def unsend(http: httpx.AsyncClient, account: Account, thread_id: str,
                 message_id: str) -> None:
    response = await http.delete(f"/api/threads/{thread_id}/messages/{message_id}",
                                 headers=account.auth)
    assert response.status_code == 200, response.text


async def replies(http: httpx.AsyncClient, account: Account, thread_id: str, message_id: str,
                  **params: Any) -> httpx.Response:
    return await http.get(f"/api/threads/{thread_id}/messages/{message_id}/replies",
                          headers=account.auth, params=params)


async def test_reactions_and_reply_counts_in_history_one_entry_and_replies(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob, carol)
    first, _ = await send(http, alice, thread_id, "first")
    plain, _ = await send(http, alice, thread_id, "nobody reacts")
    await react(http, bob, thread_id, first, "👍")
    await react(http, carol, thread_id, first, "❤️")
    await react(http, carol, thread_id, first, "👍")
    one, _ = await send(http, bob, thread_id, "reply one", reply_to=first)
    two, _ = await send(http, carol, thread_id, "reply two", reply_to=first)

    def message(entries: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
        [found] = [e for e in entries if e.get("message_id") == message_id
                   and e["type"] in ("message", "message_reply")]
        return found

    page = await history(http, bob, thread_id)
    shown = message(page, first)
    assert shown["reactions"] == {"👍": [bob.user_id, carol.user_id], "❤️": [carol.user_id]}
    assert shown["reply_count"] == 2
    assert (shown["deleted"], shown["edited_at"]) == (False, None)
    assert "status" not in shown  # bob's view of alice's message
    assert (message(page, plain)["reactions"], message(page, plain)["reply_count"]) == ({}, 0)
    # The action entries stay in history (a client catching up by seq sees no gap).
    assert [e["type"] for e in page].count("message_reaction") == 3
    # One entry: the same state.
    assert await entry(http, carol, thread_id, first) == shown
    # The replies, oldest first, each with its own state.
    listed = await replies(http, alice, thread_id, first)
    assert listed.status_code == 200, listed.text
    assert [(r["message_id"], r["type"], r["reply_to"]) for r in listed.json()["data"]] == [
        (one, "message_reply", first), (two, "message_reply", first)]
    # An unsent reply no longer counts, nor is listed among the replies.
    await unsend(http, carol, thread_id, two)
    assert message(await history(http, bob, thread_id), first)["reply_count"] == 1
    assert (await entry(http, bob, thread_id, first))["reply_count"] == 1
    listed = await replies(http, alice, thread_id, first)
    assert [r["message_id"] for r in listed.json()["data"]] == [one]
    tomb = message(await history(http, bob, thread_id), two)
    assert (tomb["deleted"], tomb["body"], tomb["reactions"]) == (True, None, {})


async def test_status_of_own_messages_follows_the_others_marks(http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob, carol)
    message_id, seq = await post_message(http, alice, thread_id)

    async def status() -> str:
        shown = await entry(http, alice, thread_id, message_id)
        page = [e for e in await history(http, alice, thread_id)
                if e.get("message_id") == message_id]
        assert page[0]["status"] == shown["status"]
        return str(shown["status"])

    assert await status() == "sent"
    await deliver(http, bob, thread_id, seq)
    assert await status() == "sent"  # carol has not got it yet
    await deliver(http, carol, thread_id, seq)
    assert await status() == "delivered"
    await read(http, bob, thread_id, seq)
    assert await status() == "delivered"
    await read(http, carol, thread_id, seq)  # reading implies delivery
    assert await status() == "read"
    # Someone added later does not hold the status back.
    dave = await register(http)
    added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                            json={"user_ids": [dave.user_id]})
    assert added.status_code == 200, added.text
    assert await status() == "read"
    # Only the sender sees a status; a later message is still "sent".
    assert "status" not in await entry(http, bob, thread_id, message_id)
    later, _ = await post_message(http, alice, thread_id)
    assert (await entry(http, alice, thread_id, later))["status"] == "sent"
    # Alone in the thread: nobody can receive it, so "sent".
    for member in (bob, carol, dave):
        left = await http.delete(f"/api/threads/{thread_id}/members/{member.user_id}",
                                 headers=member.auth)
        assert left.status_code == 200, left.text
    assert await status() == "sent"


async def test_paging_by_message_id(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    other = await create_group(http, alice, bob)
    sent = [await send(http, alice, thread_id, f"m{i}") for i in range(5)]
    ids = [mid for mid, _ in sent]
    (third, third_seq), (fifth, _) = sent[2], sent[4]
    before = await history(http, bob, thread_id, before_id=third)
    assert [e["seq"] for e in before] == list(range(1, third_seq))
    after = await history(http, bob, thread_id, after_id=third, limit=1)
    assert [e["message_id"] for e in after] == [ids[3]]
    between = await history(http, bob, thread_id, after_id=ids[0], before_id=fifth)
    assert [e["message_id"] for e in between] == ids[1:4]
    mixed = await history(http, bob, thread_id, after_seq=third_seq, before_id=fifth)
    assert [e["message_id"] for e in mixed] == [ids[3]]
    # The creation event has an id too.
    created = (await history(http, bob, thread_id, limit=200))[0]
    assert (await history(http, bob, thread_id, before_id=created["message_id"])) == []
    url = f"/api/threads/{thread_id}/messages"
    elsewhere, _ = await send(http, alice, other, "elsewhere")
    for missing in ({"before_id": "m-none"}, {"after_id": elsewhere}):
        assert_error(await http.get(url, headers=bob.auth, params=missing), 404, 4001,
                     "message_not_found")
    bad: list[dict[str, str | int]] = [
        {"before_id": third, "before_seq": 3}, {"after_id": third, "after_seq": 1},
        {"before_id": "not an id"}, {"after_id": "x" * 65}]
    for params in bad:
        assert_error(await http.get(url, headers=bob.auth, params=params), 400, 1001,
                     "invalid_parameter")
    mallory = await register(http)
    assert_error(await http.get(url, headers=mallory.auth, params={"before_id": third}), 403,
                 3003, "not_a_member")


async def test_one_entry_and_replies_respect_what_the_caller_may_read(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, late, mallory = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, alice, bob)
    other = await create_group(http, alice, bob)
    early, _ = await send(http, alice, thread_id, "before late joined")
    elsewhere, _ = await send(http, alice, other, "another thread")
    await send(http, bob, thread_id, "early reply", reply_to=early)
    added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                            json={"user_ids": [late.user_id]})
    assert added.status_code == 200, added.text
    now, _ = await send(http, alice, thread_id, "after", reply_to=early)
    base = f"/api/threads/{thread_id}/messages"
    # Under `joined` history, the earlier message is not there for the later member.
    for path in (f"{base}/{early}", f"{base}/{early}/replies"):
        assert_error(await http.get(path, headers=late.auth), 404, 4001, "message_not_found")
        assert_error(await http.get(path, headers=mallory.auth), 403, 3003, "not_a_member")
    assert (await entry(http, late, thread_id, now))["body"] == "after"
    for missing in ("m-none", elsewhere):
        for path in (f"{base}/{missing}", f"{base}/{missing}/replies"):
            assert_error(await http.get(path, headers=bob.auth), 404, 4001, "message_not_found")
    assert_error(await http.get(f"/api/threads/tnope/messages/{early}", headers=bob.auth),
                 404, 3001, "thread_not_found")
    # A thread event is one entry too (but has no replies).
    created = (await history(http, bob, thread_id))[0]
    assert (await entry(http, bob, thread_id, created["message_id"]))["type"] == "event"
    assert_error(await http.get(f"{base}/{created['message_id']}/replies", headers=bob.auth),
                 404, 4001, "message_not_found")
    # Replies page oldest first with after_seq; limit and before_seq bound them.
    more = [await send(http, bob, thread_id, f"r{i}", reply_to=early) for i in range(3)]
    all_replies = (await replies(http, alice, thread_id, early)).json()["data"]
    assert [r["body"] for r in all_replies] == ["early reply", "after", "r0", "r1", "r2"]
    page = (await replies(http, alice, thread_id, early, limit=2,
                          after_seq=all_replies[1]["seq"])).json()["data"]
    assert [r["message_id"] for r in page] == [m for m, _ in more[:2]]
    page = (await replies(http, alice, thread_id, early, before_seq=more[0][1])).json()["data"]
    assert [r["body"] for r in page] == ["early reply", "after"]
    for params in ({"limit": 0}, {"limit": 201}, {"after_seq": -1}):
        assert_error(await replies(http, alice, thread_id, early, **params), 400, 1001,
                     "invalid_parameter")
    assert (await http.get(f"{base}/{early}")).status_code == 401
