"""Message search over real HTTP on both stacks (SQLite FTS5 trigrams, PostgreSQL pg_trgm):
substrings in any script, case-insensitive ASCII, the filters, paging, and what a searcher may
never find: threads they were never in, entries before their join (joined visibility), entries
after their leaving. Hostile queries get 1001 or an answer, never a 5xx."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_threadlist import send
from tests.helpers import Account, create_group, register, unique_id


async def thread_search(http: httpx.AsyncClient, account: Account, thread_id: str,
                        **params: Any) -> dict[str, Any]:
    response = await http.get(f"/api/threads/{thread_id}/messages/search", headers=account.auth,
                              params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def global_search(http: httpx.AsyncClient, account: Account,
                        **params: Any) -> dict[str, Any]:
    response = await http.get("/api/search/messages", headers=account.auth, params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def bodies(page: dict[str, Any]) -> list[str]:
    return [m["body"] for m in page["messages"]]


async def test_substring_in_any_script_and_case(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    tag = unique_id("t")
    await send(http, owner, thread_id, f"你好世界 {tag}")
    await send(http, bob, thread_id, f"Hello WORLD {tag}")
    await send(http, owner, thread_id, f"nothing here {tag}")
    # Two CJK characters: a scan of this thread (trigram indexes need three).
    assert bodies(await thread_search(http, bob, thread_id, q="好世")) == [f"你好世界 {tag}"]
    assert bodies(await thread_search(http, bob, thread_id, q="好世界")) == [f"你好世界 {tag}"]
    assert bodies(await thread_search(http, bob, thread_id, q="lo wor")) == [f"Hello WORLD {tag}"]
    assert bodies(await thread_search(http, bob, thread_id, q="o W")) == [f"Hello WORLD {tag}"]
    found = await global_search(http, bob, q="你好世界")
    assert bodies(found) == [f"你好世界 {tag}"]
    assert found["next_before_id"] is None
    message = found["messages"][0]
    assert (message["type"], message["thread_id"], message["seq"]) == ("message", thread_id, 2)
    # Newest first; the global search wants three characters.
    assert bodies(await global_search(http, owner, q=tag.upper())) == [
        f"nothing here {tag}", f"Hello WORLD {tag}", f"你好世界 {tag}"]
    assert_error(await http.get("/api/search/messages", headers=bob.auth, params={"q": "好世"}),
                 400, 1001, "invalid_parameter")
    assert bodies(await thread_search(http, bob, thread_id, q="absent-xyz")) == []


async def test_filters_and_paging(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    tag = unique_id("p")
    seqs = [await send(http, owner if i % 2 else bob, thread_id, f"{tag} number {i}")
            for i in range(7)]
    mid_ms = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    late = await send(http, owner, thread_id, f"{tag} late")
    by_owner = await thread_search(http, bob, thread_id, q=tag, sender_id=owner.user_id)
    assert [m["seq"] for m in by_owner["messages"]] == [late, seqs[5], seqs[3], seqs[1]]
    assert bodies(await thread_search(http, bob, thread_id, q=tag, **{"from": mid_ms})) == [
        f"{tag} late"]
    assert f"{tag} late" not in bodies(await thread_search(http, bob, thread_id, q=tag,
                                                           to=mid_ms))
    assert bodies(await thread_search(http, bob, thread_id, q=tag, type="image")) == []
    assert len((await thread_search(http, bob, thread_id, q=tag, type="text"))["messages"]) == 8
    # Pages of 3 by before_seq, then by before_id globally: every match once, newest first.
    seen: list[int] = []
    page = await thread_search(http, bob, thread_id, q=tag, limit=3)
    while True:
        seen += [m["seq"] for m in page["messages"]]
        if page["next_before_seq"] is None:
            break
        page = await thread_search(http, bob, thread_id, q=tag, limit=3,
                                   before_seq=page["next_before_seq"])
    assert seen == sorted([*seqs, late], reverse=True)
    ids: list[int] = []
    page = await global_search(http, owner, q=tag, limit=3)
    while True:
        ids += [m["seq"] for m in page["messages"]]
        if page["next_before_id"] is None:
            break
        page = await global_search(http, owner, q=tag, limit=3, before_id=page["next_before_id"])
    assert ids == seen
    for bad in ({"type": "nope"}, {"limit": 0}, {"limit": 101}, {"from": -1},
                {"before_id": "nosuchmessage"}):
        assert_error(await http.get("/api/search/messages", headers=bob.auth,
                                    params={"q": tag, **bad}), 400, 1001, "invalid_parameter")


async def test_non_member_never_finds(http: httpx.AsyncClient) -> None:
    owner, bob, eve = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    tag = unique_id("s")
    await send(http, owner, thread_id, f"secret {tag}")
    assert_error(await http.get(f"/api/threads/{thread_id}/messages/search", headers=eve.auth,
                                params={"q": tag}), 403, 3003, "not_a_member")
    assert bodies(await global_search(http, eve, q=tag)) == []
    # A cursor from someone else's thread is refused, not followed.
    mine = (await global_search(http, bob, q=tag))["messages"][0]["message_id"]
    assert_error(await http.get("/api/search/messages", headers=eve.auth,
                                params={"q": tag, "before_id": mine}), 400, 1001,
                 "invalid_parameter")


async def test_visibility_join_and_leave(http: httpx.AsyncClient) -> None:
    owner, bob, carol = await register(http), await register(http), await register(http)
    joined = await create_group(http, owner, bob)
    shared = await create_group(http, owner, bob)
    response = await http.patch(f"/api/threads/{shared}", headers=owner.auth,
                                json={"settings": {"history_visibility": "shared"}})
    assert response.status_code == 200, response.text
    tag = unique_id("v")
    for thread_id in (joined, shared):
        await send(http, owner, thread_id, f"before {tag}")
        added = await http.post(f"/api/threads/{thread_id}/members", headers=owner.auth,
                                json={"user_ids": [carol.user_id]})
        assert added.status_code == 200, added.text
        await send(http, owner, thread_id, f"after {tag}")
    assert bodies(await thread_search(http, carol, joined, q=tag)) == [f"after {tag}"]
    assert bodies(await thread_search(http, carol, shared, q=tag)) == [f"after {tag}",
                                                                        f"before {tag}"]
    everywhere = await global_search(http, carol, q=tag)
    assert sorted((m["thread_id"], m["body"]) for m in everywhere["messages"]) == sorted(
        [(joined, f"after {tag}"), (shared, f"after {tag}"), (shared, f"before {tag}")])
    # Removed: bob finds up to his leaving, nothing after.
    removed = await http.delete(f"/api/threads/{joined}/members/{bob.user_id}",
                                headers=owner.auth)
    assert removed.status_code == 200, removed.text
    await send(http, owner, joined, f"gone {tag}")
    assert bodies(await thread_search(http, bob, joined, q=tag)) == [f"after {tag}",
                                                                      f"before {tag}"]
    assert (joined, f"gone {tag}") not in [
        (m["thread_id"], m["body"]) for m in (await global_search(http, bob, q=tag))["messages"]]
    assert f"gone {tag}" in bodies(await thread_search(http, carol, joined, q=tag))


async def test_hostile_queries(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    thread_id = await create_group(http, owner)
    tag = unique_id("h")
    await send(http, owner, thread_id, f'{tag} 100% of_it "quoted" a*b NEAR(x y) OR \\ end')
    await send(http, owner, thread_id, f"{tag} 100 percent ofXit")
    exact = {"%": 1, "_": 1, "100%": 1, "of_it": 1, '"quoted"': 1, "a*b": 1, "NEAR(x": 1,
             "OR \\": 1, "\\": 1, '"': 1, "*": 1, "%%%": 0, "___": 0, "OR": 1, "AND NOT": 0,
             '"x" OR "y"': 0, "(": 1, "^x": 0, "{a}": 0, "body:": 0, ":": 0}
    for q, count in exact.items():
        found = await thread_search(http, owner, thread_id, q=q)
        assert len(found["messages"]) == count, (q, found)
        if len(q.strip()) >= 3:
            response = await http.get("/api/search/messages", headers=owner.auth,
                                      params={"q": f"{tag} {q}"[:200]})
            assert response.status_code == 200, (q, response.text)
    for bad in ("\x00", "a\x00bc", "abc\n", "\x1b[31m", "x" * 1000, "", "   "):
        for path in (f"/api/threads/{thread_id}/messages/search", "/api/search/messages"):
            assert_error(await http.get(path, headers=owner.auth, params={"q": bad}),
                         400, 1001, "invalid_parameter")
    assert_error(await http.get("/api/search/messages", headers=owner.auth), 400, 1001,
                 "invalid_parameter")
