"""What a member sees of their threads, over real HTTP on both stacks: thread info and members,
the thread list (fields, order, pinned first, archived / include_left / q / unread filters, unread
mentions) and the sync counts. A member's own settings, the direct-thread lookup, message
requests and paging the list (`limit`, `after`) are in test_threadsettings.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_friends import befriend
from tests.helpers import (
    Account,
    create_group,
    register,
    unique_id,
)


async def send(http: httpx.AsyncClient, account: Account, thread_id: str, body: str = "hi",
               mentions: list[str] | None = None) -> int:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=account.auth,
                               json={"client_msg_id": unique_id("c"), "body": body,
                                     "mentions": mentions or []})
    assert response.status_code == 201, response.text
    seq: int = response.json()["data"]["seq"]
    return seq


async def listing(http: httpx.AsyncClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = await http.get("/api/threads", headers=account.auth, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def ids(http: httpx.AsyncClient, account: Account, **params: str) -> list[str]:
    return [t["thread_id"] for t in await listing(http, account, **params)]


async def item(http: httpx.AsyncClient, account: Account, thread_id: str,
               **params: str) -> dict[str, Any]:
    found = [t for t in await listing(http, account, **params) if t["thread_id"] == thread_id]
    assert len(found) == 1, found
    return found[0]


async def patch(http: httpx.AsyncClient, account: Account, thread_id: str,
                **settings: Any) -> dict[str, Any]:
    response = await http.patch(f"/api/threads/{thread_id}/settings", headers=account.auth,
                                json=settings)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def create_direct(http: httpx.AsyncClient, a: Account, b: Account) -> str:
    response = await http.post("/api/threads", headers=a.auth,
                               json={"type": "direct", "user_ids": [b.user_id]})
    assert response.status_code in (200, 201), response.text
    thread_id: str = response.json()["data"]["thread_id"]
    return thread_id


DEFAULT_SETTINGS = {"pinned": False, "archived": False, "marked_unread": False,
                    "muted_until": None, "recv_msg_opt": 0}


# --- thread info and members ----------------------------------------------------------------


async def test_thread_info_carries_looks_settings_and_participants(
    http: httpx.AsyncClient,
) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    response = await http.get(f"/api/threads/{thread_id}", headers=bob.auth)
    assert response.status_code == 200, response.text
    info = response.json()["data"]
    assert set(info) == {
        "thread_id", "type", "name", "owner_id", "admin_ids", "participants", "max_seq",
        "created_at", "image_url", "color", "emoji", "description", "status", "settings",
        "nicknames", "capacity", "geo"}
    assert (info["type"], info["name"], info["owner_id"], info["status"]) == (
        "group", "g", owner.user_id, "active")
    assert (info["image_url"], info["color"], info["emoji"], info["description"]) == (
        None, None, None, None)
    assert info["settings"] == {"history_visibility": "joined", "join_approval": False,
                                "admins_only_send": False, "visibility": "private"}
    assert info["nicknames"] == {}
    assert (info["capacity"], info["geo"]) == (None, None)  # rooms only
    participants = info["participants"]
    assert [(p["user_id"], p["role"]) for p in participants] == [
        (owner.user_id, "owner"), (bob.user_id, "member")]
    for p in participants:
        assert set(p) == {"user_id", "role", "nickname", "joined_at", "read_seq",
                          "delivered_seq", "muted_until", "is_bot"}
        assert (p["nickname"], p["delivered_seq"], p["muted_until"], p["is_bot"]) == (
            None, 0, None, False)
        assert datetime.fromisoformat(p["joined_at"]).tzinfo is not None
    assert info["max_seq"] == 1
    assert participants[1]["read_seq"] == (await item(http, bob, thread_id))["read_seq"]


async def test_members_list_is_for_current_members_only(http: httpx.AsyncClient) -> None:
    owner, bob, carol, outsider = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob, carol)
    path = f"/api/threads/{thread_id}/members"
    response = await http.get(path, headers=bob.auth)
    assert response.status_code == 200, response.text
    members = response.json()["data"]
    assert [(m["user_id"], m["role"]) for m in members] == [
        (owner.user_id, "owner"), (bob.user_id, "member"), (carol.user_id, "member")]
    assert all(set(m) == {"user_id", "role", "nickname", "joined_at", "muted_until", "is_bot"}
               for m in members)
    assert_error(await http.get(path, headers=outsider.auth), 403, 3003, "not_a_member")
    assert_error(await http.get("/api/threads/tnothere/members", headers=bob.auth),
                 404, 3001, "thread_not_found")
    # Removed: no longer listed, and no longer allowed to look.
    removed = await http.delete(f"{path}/{carol.user_id}", headers=owner.auth)
    assert removed.status_code == 200, removed.text
    after = (await http.get(path, headers=bob.auth)).json()["data"]
    assert [m["user_id"] for m in after] == [owner.user_id, bob.user_id]
    assert_error(await http.get(path, headers=carol.auth), 403, 3003, "not_a_member")
    assert_error(await http.get(f"/api/threads/{thread_id}", headers=carol.auth),
                 403, 3003, "not_a_member")


async def test_info_and_members_show_nicknames_and_admin_mutes(http: httpx.AsyncClient) -> None:
    """Needs the governance routes (nicknames, mutes) of docs/threads.md."""
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    nick = await http.put(f"/api/threads/{thread_id}/nicknames/{bob.user_id}", headers=bob.auth,
                          json={"nickname": "Bobby"})
    assert nick.status_code == 200, nick.text
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    muted = await http.post(f"/api/threads/{thread_id}/mutes", headers=owner.auth,
                            json={"user_ids": [bob.user_id], "until": until})
    assert muted.status_code == 200, muted.text
    info = (await http.get(f"/api/threads/{thread_id}", headers=owner.auth)).json()["data"]
    assert info["nicknames"] == {bob.user_id: "Bobby"}
    bob_view = next(p for p in info["participants"] if p["user_id"] == bob.user_id)
    assert bob_view["nickname"] == "Bobby"
    assert datetime.fromisoformat(bob_view["muted_until"]) > datetime.now(UTC)
    members = (await http.get(f"/api/threads/{thread_id}/members",
                              headers=owner.auth)).json()["data"]
    assert [(m["nickname"], m["muted_until"] is not None) for m in members] == [
        (None, False), ("Bobby", True)]


async def test_room_info_has_capacity_and_geo(http: httpx.AsyncClient) -> None:
    """Needs chat rooms (POST /api/threads {type: room})."""
    owner = await register(http)
    created = await http.post("/api/threads", headers=owner.auth, json={
        "type": "room", "name": "plaza", "capacity": 50, "geo": {"lat": 48.85, "lng": 2.35}})
    assert created.status_code == 201, created.text
    info = created.json()["data"]
    assert (info["type"], info["capacity"], info["geo"]) == (
        "room", 50, {"lat": 48.85, "lng": 2.35})
    assert info["settings"]["visibility"] == "public"


# --- the thread list --------------------------------------------------------------------------


async def test_list_item_fields_and_order_pinned_first(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    old = await create_group(http, alice, bob)
    middle = await create_group(http, alice, bob)
    new = await create_group(http, alice, bob)
    await send(http, alice, new, "latest")
    threads = await listing(http, bob)
    assert [t["thread_id"] for t in threads] == [new, middle, old]
    first = threads[0]
    assert set(first) == {
        "thread_id", "type", "name", "status", "membership", "role", "max_seq", "read_seq",
        "unread", "unread_mentions", "last_message", "last_activity_at", "pinned", "archived",
        "marked_unread", "muted_until", "recv_msg_opt"}
    assert (first["type"], first["status"], first["membership"], first["role"]) == (
        "group", "active", "active", "member")
    assert (first["max_seq"], first["unread"], first["unread_mentions"]) == (2, 1, 0)
    assert first["last_message"]["body"] == "latest"
    assert {k: first[k] for k in DEFAULT_SETTINGS} == DEFAULT_SETTINGS
    # Pinned threads come first (newest activity first among them), then the rest.
    await patch(http, bob, old, pinned=True)
    await patch(http, bob, middle, pinned=True)
    assert await ids(http, bob) == [middle, old, new]
    assert (await item(http, bob, old))["pinned"] is True
    await send(http, alice, old, "bump")
    assert await ids(http, bob) == [old, middle, new]
    # Pins are per member: alice's order is by activity alone.
    assert await ids(http, alice) == [old, new, middle]


async def test_archived_threads_are_left_out_unless_asked(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    kept = await create_group(http, alice, bob)
    shelved = await create_group(http, alice, bob)
    settings = await patch(http, bob, shelved, archived=True)
    assert settings == {**DEFAULT_SETTINGS, "archived": True}
    assert await ids(http, bob) == [kept]
    assert await ids(http, bob, archived="true") == [shelved, kept]  # archived AND the others
    assert (await item(http, bob, shelved, archived="true"))["archived"] is True
    assert await ids(http, bob, archived="false") == [kept]
    assert await ids(http, alice) == [shelved, kept]  # archiving is per member
    await patch(http, bob, shelved, archived=False)
    assert await ids(http, bob) == [shelved, kept]
    for bad in ({"archived": "yes"}, {"include_left": "2"}, {"unread": "True"},
                {"requests": "x"}):
        assert_error(await http.get("/api/threads", headers=bob.auth, params=bad),
                     400, 1001, "invalid_parameter")


async def test_include_left_lists_former_threads(http: httpx.AsyncClient) -> None:
    """Needs former members (PastMember rows) written by leave and remove."""
    owner, bob, carol = [await register(http) for _ in range(3)]
    stay = await create_group(http, owner, bob, carol)
    left = await create_group(http, owner, bob)
    gone = await create_group(http, owner, bob)
    members = "/api/threads/{}/members/{}"
    assert (await http.delete(members.format(left, bob.user_id), headers=bob.auth)).is_success
    assert (await http.delete(members.format(gone, bob.user_id),
                              headers=owner.auth)).is_success
    await send(http, owner, left, "after bob left")
    assert await ids(http, bob) == [stay]
    threads = {t["thread_id"]: t for t in await listing(http, bob, include_left="true")}
    assert set(threads) == {stay, left, gone}
    assert threads[stay]["membership"] == "active"
    assert (threads[left]["membership"], threads[gone]["membership"]) == ("left", "removed")
    former = threads[left]
    # What bob sees of it stops at his leaving (seq 2): the later message is not his to see.
    assert (former["role"], former["max_seq"], former["read_seq"], former["unread"]) == (
        None, 2, 2, 0)
    assert former["last_message"]["logMessageType"] == "log:unsubscribe"
    assert former["status"] == "active"


async def test_dissolved_threads_only_with_include_left(http: httpx.AsyncClient) -> None:
    """Needs dissolving (DELETE /api/threads/{id} by the owner)."""
    owner, bob = await register(http), await register(http)
    alive = await create_group(http, owner, bob)
    ended = await create_group(http, owner, bob)
    assert (await http.delete(f"/api/threads/{ended}", headers=owner.auth)).is_success
    assert await ids(http, bob) == [alive]
    dissolved = await item(http, bob, ended, include_left="true")
    assert (dissolved["status"], dissolved["membership"]) == ("dissolved", "active")


async def test_q_matches_names_and_direct_peers_literally(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    zoe = await register(http, name=f"Zoë Peer {unique_id('')}")
    await befriend(http, alice, zoe)
    made = []
    for name in ("Climbing CREW", "100% done", "under_score", "plain"):
        response = await http.post("/api/threads", headers=alice.auth,
                                   json={"type": "group", "name": name, "user_ids": []})
        assert response.status_code == 201, response.text
        made.append(response.json()["data"]["thread_id"])
    crew, percent, underscore, plain = made
    direct = await create_direct(http, alice, zoe)
    assert await ids(http, alice, q="crew") == [crew]
    assert await ids(http, alice, q="  climbing ") == [crew]
    assert await ids(http, alice, q="%") == [percent]  # wildcards match themselves
    assert await ids(http, alice, q="_") == [underscore]
    assert await ids(http, alice, q="g_c") == []  # `_` is not "any character"
    assert await ids(http, alice, q="b%w") == []  # nor `%` "anything"
    assert await ids(http, alice, q="\\") == []
    assert await ids(http, alice, q="PEER") == [direct]  # a direct thread: the peer's name
    assert await ids(http, alice, q="") == [direct, plain, underscore, percent, crew]
    assert await ids(http, alice, q="nothing like it") == []
    assert await ids(http, zoe, q=alice.user_id[:20]) == [direct]
    assert_error(await http.get("/api/threads", headers=alice.auth, params={"q": "a\x00b"}),
                 400, 1001, "invalid_parameter")
    assert_error(await http.get("/api/threads", headers=alice.auth, params={"q": "x" * 101}),
                 400, 1001, "invalid_parameter")


async def test_unread_filter_and_unread_mentions(http: httpx.AsyncClient) -> None:
    alice, bob, carol, dave = [await register(http) for _ in range(4)]
    quiet = await create_group(http, alice, bob, carol, dave)
    busy = await create_group(http, alice, bob, carol, dave)
    await send(http, alice, busy, "for bob and dave", mentions=[bob.user_id, dave.user_id])
    await send(http, carol, busy, "for carol and bob", mentions=[carol.user_id, bob.user_id])
    await send(http, alice, busy, "for carol and dave", mentions=[carol.user_id, dave.user_id])
    await send(http, bob, busy, "bob to himself", mentions=[bob.user_id])  # own: never counted
    last = await send(http, alice, busy, "plain")
    # A thread event (not a message) counts neither as unread nor as a mention.
    eve = await register(http)
    added = await http.post(f"/api/threads/{busy}/members", headers=alice.auth,
                            json={"user_ids": [eve.user_id]})
    assert added.status_code == 200, added.text
    # dave never read nor sent: the 5 messages are unread, 2 of them mention him.
    dave_view = await item(http, dave, busy)
    assert (dave_view["max_seq"], dave_view["unread"], dave_view["unread_mentions"]) == (
        last + 1, 5, 2)
    # bob's own send moved his read mark to seq 5: "plain" (6) is the only unread one.
    bob_view = await item(http, bob, busy)
    assert (bob_view["read_seq"], bob_view["unread"], bob_view["unread_mentions"]) == (5, 1, 0)
    # carol's send put hers at 3: seqs 4 (mentions her), 5 and 6.
    carol_view = await item(http, carol, busy)
    assert (carol_view["unread"], carol_view["unread_mentions"]) == (3, 1)
    assert await ids(http, carol, unread="true") == [busy]
    await http.post(f"/api/threads/{busy}/read", headers=carol.auth, json={"seq": last})
    carol_view = await item(http, carol, busy)
    assert (carol_view["unread"], carol_view["unread_mentions"]) == (0, 0)
    assert await ids(http, carol, unread="true") == []
    assert await ids(http, carol) == [busy, quiet]
    sync = (await http.get("/api/sync", headers=carol.auth)).json()["data"]
    assert {"thread_id": busy, "max_seq": last + 1, "read_seq": last, "unread": 0} in sync
    # eve joined after all of it: under `joined` history she may read none of it, so none of it
    # is unread for her.
    assert (await item(http, eve, busy))["unread"] == 0


async def test_sync_counts_every_thread_in_one_answer(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    threads = [await create_group(http, alice, bob) for _ in range(3)]
    for n, thread_id in enumerate(threads):
        for _ in range(n):
            await send(http, alice, thread_id)
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    assert [(s["thread_id"], s["unread"], s["max_seq"]) for s in sync] == [
        (threads[2], 2, 3), (threads[1], 1, 2), (threads[0], 0, 1)]
