"""A member's own settings of a thread over real HTTP on both stacks (PATCH …/settings, its
refusals, its `thread_settings` event over MQTT, recv_msg_opt 2 and back, marked_unread cleared
by reading over HTTP and MQTT), the direct-thread lookup and message requests, and paging the
thread list (`limit`, `after`, with every filter)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_friends import befriend
from tests.api.test_threadlist import (
    DEFAULT_SETTINGS,
    create_direct,
    ids,
    item,
    listing,
    patch,
    send,
)
from tests.helpers import Account, create_group, mqtt_session, next_event, register
from tests.stacks import Stack

# --- a member's own settings ------------------------------------------------------------------


async def test_settings_patch_answers_and_lists_them(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    until = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    settings = await patch(http, bob, thread_id, pinned=True, muted_until="2031-01-02T03:04:05Z",
                           recv_msg_opt=1)
    assert settings == {**DEFAULT_SETTINGS, "pinned": True, "recv_msg_opt": 1,
                        "muted_until": settings["muted_until"]}
    assert datetime.fromisoformat(settings["muted_until"]) == until
    listed = await item(http, bob, thread_id)
    assert {k: listed[k] for k in DEFAULT_SETTINGS} == settings
    # An absent field stays; muted_until null unmutes; an offset is kept as the same moment.
    settings = await patch(http, bob, thread_id, muted_until="2031-01-02T05:04:05+02:00")
    assert datetime.fromisoformat(settings["muted_until"]) == until
    assert settings["pinned"] is True
    assert (await patch(http, bob, thread_id, muted_until=None))["muted_until"] is None
    # A time already passed is no mute.
    assert (await patch(http, bob, thread_id, muted_until="2001-01-01T00:00:00"))[
        "muted_until"] is None
    # alice's settings are untouched.
    assert {k: (await item(http, alice, thread_id))[k] for k in DEFAULT_SETTINGS} == (
        DEFAULT_SETTINGS)


async def test_settings_patch_refusals_change_nothing(http: httpx.AsyncClient) -> None:
    alice, bob, outsider = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, alice, bob)
    path = f"/api/threads/{thread_id}/settings"
    await patch(http, bob, thread_id, pinned=True, recv_msg_opt=1)
    bodies: list[Any] = [
        {}, {"pinned": None}, {"pinned": "yes"}, {"pinned": 1}, {"archived": "true"},
        {"marked_unread": None}, {"recv_msg_opt": 3}, {"recv_msg_opt": -1}, {"recv_msg_opt": "1"},
        {"recv_msg_opt": True}, {"recv_msg_opt": None}, {"recv_msg_opt": 2 ** 70},
        {"muted_until": "tomorrow"}, {"muted_until": 1893456000},
        {"muted_until": "2031-13-01T00:00:00Z"}, {"muted_until": "2031-01-01T00:00:00Z\x00"},
        {"muted_until": "9" * 100}, {"muted_until": "0001-01-01T00:00:00+01:00"},
        {"muted_until": "9999-12-31T23:59:59-01:00"}, {"unknown_setting": True}, [], "pinned"]
    for body in bodies:
        assert_error(await http.patch(path, headers=bob.auth, json=body),
                     400, 1001, "invalid_parameter")
    assert_error(await http.patch(path, headers=bob.auth, content=b"{not json"),
                 400, 1001, "invalid_parameter")
    assert_error(await http.patch(path, headers=outsider.auth, json={"pinned": True}),
                 403, 3003, "not_a_member")
    assert_error(await http.patch("/api/threads/tmissing/settings", headers=bob.auth,
                                  json={"pinned": True}), 404, 3001, "thread_not_found")
    assert (await http.patch(path, json={"pinned": True})).status_code == 401
    listed = await item(http, bob, thread_id)
    assert (listed["pinned"], listed["recv_msg_opt"], listed["archived"]) == (True, 1, False)


async def test_settings_change_reaches_the_users_other_devices(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        answer = await patch(http, bob, thread_id, archived=True, marked_unread=True)
        event = await next_event(device, lambda t, e: e.get("type") == "thread_settings")
    assert event == {"type": "thread_settings", "thread_id": thread_id, "settings": answer}
    assert (answer["archived"], answer["marked_unread"]) == (True, True)


async def test_recv_msg_opt_2_and_back_keeps_history_readable(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    await send(http, alice, thread_id, "before")
    assert (await patch(http, bob, thread_id, recv_msg_opt=2))["recv_msg_opt"] == 2
    await send(http, alice, thread_id, "while not delivered")
    listed = await item(http, bob, thread_id)
    assert (listed["recv_msg_opt"], listed["unread"]) == (2, 2)  # still listed, still counted
    history = await http.get(f"/api/threads/{thread_id}/messages", headers=bob.auth)
    assert [e.get("body") for e in history.json()["data"]][-2:] == [
        "before", "while not delivered"]
    assert (await patch(http, bob, thread_id, recv_msg_opt=0))["recv_msg_opt"] == 0
    assert (await item(http, bob, thread_id))["recv_msg_opt"] == 0
    info = (await http.get(f"/api/threads/{thread_id}", headers=bob.auth)).json()["data"]
    assert bob.user_id in [p["user_id"] for p in info["participants"]]


async def test_marked_unread_shows_as_unread_until_read(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    _ = await create_group(http, alice, bob)  # a thread with nothing unread
    seq = await send(http, alice, thread_id, "seen")
    await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth, json={"seq": seq})
    assert await ids(http, bob, unread="true") == []  # `other` holds no message
    await patch(http, bob, thread_id, marked_unread=True)
    listed = await item(http, bob, thread_id)
    assert (listed["marked_unread"], listed["unread"]) == (True, 0)
    assert thread_id in await ids(http, bob, unread="true")
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        # Reading clears the mark even though the read mark does not move.
        read = await http.post(f"/api/threads/{thread_id}/read", headers=bob.auth,
                               json={"seq": seq})
        assert read.json()["data"] == {"thread_id": thread_id, "read_seq": seq}
        event = await next_event(device, lambda t, e: e.get("type") == "thread_settings")
    assert event["settings"]["marked_unread"] is False
    assert (await item(http, bob, thread_id))["marked_unread"] is False
    assert thread_id not in await ids(http, bob, unread="true")
    # Over MQTT too: the read op goes through the same code.
    await patch(http, bob, thread_id, marked_unread=True)
    async with mqtt_session(server.settings, bob) as device:
        await device.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await device.publish(f"{prefix}/up/{bob.user_id}", qos=1, payload=(
            f'{{"op": "read", "req": "r1", "thread_id": "{thread_id}", "seq": {seq}}}'))
        await next_event(device, lambda t, e: e.get("req") == "r1")
    assert (await item(http, bob, thread_id))["marked_unread"] is False


# --- direct threads and message requests --------------------------------------------------------


async def test_direct_lookup(http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    await befriend(http, alice, bob)
    thread_id = await create_direct(http, alice, bob)
    for caller, other in ((alice, bob), (bob, alice)):
        response = await http.get(f"/api/threads/direct/{other.user_id}", headers=caller.auth)
        assert response.status_code == 200, response.text
        info = response.json()["data"]
        assert (info["thread_id"], info["type"]) == (thread_id, "direct")
        assert {p["user_id"] for p in info["participants"]} == {alice.user_id, bob.user_id}
    for caller, other in ((alice, carol), (carol, alice), (alice, alice)):
        assert_error(await http.get(f"/api/threads/direct/{other.user_id}",
                                    headers=caller.auth), 404, 3001, "thread_not_found")
    assert_error(await http.get("/api/threads/direct/nobody-at-all", headers=alice.auth),
                 404, 3001, "thread_not_found")


async def test_friends_direct_thread_is_no_request(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    await befriend(http, alice, bob)
    thread_id = await create_direct(http, alice, bob)
    await send(http, alice, thread_id)
    assert (await item(http, bob, thread_id))["unread"] == 1
    assert await ids(http, bob, requests="true") == []
    assert_error(await http.post(f"/api/threads/{thread_id}/accept", headers=bob.auth),
                 400, 1001, "invalid_parameter")


async def test_message_request_until_accepted(http: httpx.AsyncClient) -> None:
    """Needs message requests: a direct thread opened by a non-friend is a request for the
    recipient (Member.is_request, set when the thread is created)."""
    stranger, bob, outsider = [await register(http) for _ in range(3)]
    thread_id = await create_direct(http, stranger, bob)
    await send(http, stranger, thread_id, "hello, we have not met")
    # The sender's side works as usual.
    assert thread_id in await ids(http, stranger)
    assert await ids(http, stranger, requests="true") == []
    # The recipient's: only under ?requests=true, with no unread counted.
    assert thread_id not in await ids(http, bob)
    assert thread_id not in await ids(http, bob, archived="true", include_left="true")
    request = await item(http, bob, thread_id, requests="true")
    assert (request["unread"], request["unread_mentions"]) == (0, 0)
    assert request["last_message"]["body"] == "hello, we have not met"
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    assert [s["unread"] for s in sync if s["thread_id"] == thread_id] == [0]
    # Only the recipient accepts, once.
    assert_error(await http.post(f"/api/threads/{thread_id}/accept", headers=stranger.auth),
                 400, 1001, "invalid_parameter")
    assert_error(await http.post(f"/api/threads/{thread_id}/accept", headers=outsider.auth),
                 403, 3003, "not_a_member")
    accepted = await http.post(f"/api/threads/{thread_id}/accept", headers=bob.auth)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["thread_id"] == thread_id
    assert_error(await http.post(f"/api/threads/{thread_id}/accept", headers=bob.auth),
                 400, 1001, "invalid_parameter")
    assert await ids(http, bob, requests="true") == []
    assert (await item(http, bob, thread_id))["unread"] == 1
    assert_error(await http.post("/api/threads/tmissing/accept", headers=bob.auth),
                 404, 3001, "thread_not_found")


# --- paging the list --------------------------------------------------------------------------


async def walk(http: httpx.AsyncClient, account: Account, limit: int, **params: str) -> list[str]:
    """The list `limit` at a time, each page after the previous one's last item, until a page
    comes back shorter than `limit`; every thread must come exactly once."""
    walked: list[str] = []
    after: dict[str, str] = {}
    for _ in range(200):
        page = await ids(http, account, limit=str(limit), **after, **params)
        assert len(page) <= limit
        walked += page
        if len(page) < limit:
            assert len(walked) == len(set(walked)), walked
            return walked
        after = {"after": page[-1]}
    raise AssertionError("the walk did not end")


async def test_list_pages_walk_every_thread_once_pinned_first(http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await register(http) for _ in range(3)]
    made = [await create_group(http, alice, bob) for _ in range(45)]  # oldest first
    pins, shelved = [made[5], made[17], made[40]], [made[8], made[33]]
    for thread_id in pins:
        await patch(http, bob, thread_id, pinned=True)
    for thread_id in shelved:
        await patch(http, bob, thread_id, archived=True)
    await send(http, alice, made[0], "bump")  # the newest activity among the unpinned
    rest = [t for t in reversed(made[1:]) if t not in pins and t not in shelved]
    expected = [made[40], made[17], made[5], made[0], *rest]
    assert len(expected) == 43
    assert await ids(http, bob) == expected[:20]  # the default page
    assert await ids(http, bob, limit="200") == expected
    assert await ids(http, bob, limit="1") == expected[:1]
    for limit in (1, 7, 20, 43, 200):
        assert await walk(http, bob, limit) == expected
    # The next page is what follows the given thread, and the last one may come back empty.
    assert await ids(http, bob, limit="5", after=made[17]) == expected[2:7]
    assert await ids(http, bob, after=expected[-1]) == []
    assert await ids(http, bob, after="") == expected[:20]  # empty: the first page
    # An archived thread's position works as well (a thread archived between two pages).
    assert await ids(http, bob, limit="3", after=made[33]) == [made[32], made[31], made[30]]
    # Filters page the same way.
    everything = await ids(http, bob, limit="200", archived="true")
    assert sorted(everything) == sorted(made)
    assert await walk(http, bob, 6, archived="true") == everything
    for thread_id in (made[2], made[20], made[33]):
        await send(http, alice, thread_id, "news")
    await patch(http, bob, made[11], marked_unread=True)
    unread = await ids(http, bob, limit="200", unread="true", archived="true")
    assert unread == [made[33], made[20], made[2], made[0], made[11]]
    assert await walk(http, bob, 2, unread="true", archived="true") == unread
    assert await walk(http, bob, 9, q="G") == await ids(http, bob, limit="200", q="g")
    # Bad pages: limit out of 1..200 or not a number, `after` not one of the caller's threads.
    foreign = await create_group(http, carol, alice)
    for bad in ({"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"limit": "-1"},
                {"limit": "2.5"}, {"limit": "9" * 30}, {"after": foreign},
                {"after": "tnothere"}, {"after": "not an id"}, {"after": "a" * 65},
                {"after": "t\x00"}, {"after": foreign, "archived": "true"}):
        assert_error(await http.get("/api/threads", headers=bob.auth, params=bad),
                     400, 1001, "invalid_parameter")
    # /api/sync is not paged: every thread, archived ones too.
    sync = (await http.get("/api/sync", headers=bob.auth)).json()["data"]
    assert len(sync) == 45


async def test_paging_with_former_threads_and_requests(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    made = [await create_group(http, owner, bob) for _ in range(6)]
    members = "/api/threads/{}/members/{}"
    for thread_id in (made[1], made[4]):
        assert (await http.delete(members.format(thread_id, bob.user_id),
                                  headers=bob.auth)).is_success
    assert (await http.delete(members.format(made[2], bob.user_id),
                              headers=owner.auth)).is_success
    assert (await http.delete(f"/api/threads/{made[3]}", headers=owner.auth)).is_success
    await patch(http, bob, made[0], pinned=True)
    await send(http, owner, made[1], "after bob left")  # no activity for bob
    # Each item, current, dissolved, left or removed, is in turn the `after` of the next page.
    # Pinned first; then the dissolving, the removal and the two leavings, newest first; then
    # made[5], whose last activity (its creation) came before all of them.
    everything = await listing(http, bob, include_left="true")
    expected = [made[0], made[3], made[2], made[4], made[1], made[5]]
    assert [t["thread_id"] for t in everything] == expected
    assert [(t["status"], t["membership"]) for t in everything] == [
        ("active", "active"), ("dissolved", "active"), ("active", "removed"),
        ("active", "left"), ("active", "left"), ("active", "active")]
    for limit in (1, 2, 5, 6):
        assert await walk(http, bob, limit, include_left="true") == expected
    assert await walk(http, bob, 2, include_left="true", archived="true") == expected
    assert await walk(http, bob, 1) == [made[0], made[5]]
    # A former thread's position is accepted without include_left too.
    assert await ids(http, bob, after=made[1]) == [made[5]]
    # Message requests page the same way.
    strangers = [await register(http) for _ in range(3)]
    requests = [await create_direct(http, s, bob) for s in strangers]
    assert await walk(http, bob, 2, requests="true") == list(reversed(requests))
