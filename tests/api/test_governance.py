"""Governing a thread over real HTTP, on both stacks: its looks and settings, admins, the owner,
nicknames, dissolving a group and deleting a direct thread (mutes and announcements are in
tests/api/test_announcements.py). Every change is a timeline entry with the next seq."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import (
    Account,
    create_group,
    granted,
    mqtt_session,
    next_event,
    register,
    whole_timeline,
)
from tests.stacks import Stack


async def log_after(http: httpx.AsyncClient, reader: Account, thread_id: str, after: int,
                    ) -> list[tuple[int, str, dict[str, Any]]]:
    """(seq, logMessageType, logMessageData) of the thread's entries after `after` (for a
    message: (seq, "message", body))."""
    page = await http.get(f"/api/threads/{thread_id}/messages", headers=reader.auth,
                          params={"after_seq": after})
    assert page.status_code == 200, page.text
    return [(e["seq"], e["logMessageType"], e["logMessageData"]) if e["type"] == "event"
            else (e["seq"], e["type"], e["body"]) for e in page.json()["data"]]


async def direct_thread(http: httpx.AsyncClient, a: Account, b: Account) -> str:
    created = await http.post("/api/threads", headers=a.auth,
                              json={"type": "direct", "user_ids": [b.user_id]})
    assert created.status_code in (200, 201), created.text
    thread_id: str = created.json()["data"]["thread_id"]
    return thread_id


async def appoint(http: httpx.AsyncClient, owner: Account, thread_id: str, *admins: Account,
                  ) -> None:
    response = await http.post(f"/api/threads/{thread_id}/admins", headers=owner.auth,
                               json={"user_ids": [a.user_id for a in admins]})
    assert response.status_code == 200, response.text


async def test_patch_writes_one_event_per_changed_field(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    path = f"/api/threads/{thread_id}"
    looks = {"name": "Climbers", "image_url": "https://img.example/c.png", "color": "#a1b2c3",
             "emoji": "🧗🏽", "description": "Saturday\nmornings"}
    response = await http.patch(path, headers=owner.auth, json=looks)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data == {"thread_id": thread_id, **looks, "color": "#A1B2C3", "seqs": [2, 3, 4, 5, 6],
                    "settings": {"history_visibility": "joined", "join_approval": False,
                                 "admins_only_send": False, "visibility": "private"}}
    assert await log_after(http, bob, thread_id, 1) == [
        (2, "log:thread-name", {"name": "Climbers"}),
        (3, "log:thread-icon", {"image_url": "https://img.example/c.png"}),
        (4, "log:thread-color", {"color": "#A1B2C3"}),
        (5, "log:thread-emoji", {"emoji": "🧗🏽"}),
        (6, "log:thread-description", {"description": "Saturday\nmornings"}),
    ]
    # The same values again write nothing; only what changed is logged.
    again = await http.patch(path, headers=owner.auth, json={**looks, "color": "#A1B2C3"})
    assert again.json()["data"]["seqs"] == []
    cleared = await http.patch(path, headers=owner.auth, json={"color": None, "emoji": "🎉",
                                                               "description": ""})
    assert cleared.json()["data"]["seqs"] == [7, 8, 9]
    assert (cleared.json()["data"]["color"], cleared.json()["data"]["description"]) == (None, None)
    # All changed settings of one PATCH make one event with only the changed keys.
    first = await http.patch(path, headers=owner.auth, json={"settings": {
        "join_approval": True, "history_visibility": "shared", "visibility": "private"}})
    assert first.json()["data"]["seqs"] == [10]
    second = await http.patch(path, headers=owner.auth, json={"settings": {
        "join_approval": True, "admins_only_send": True, "visibility": "public"}})
    assert second.json()["data"]["settings"] == {
        "history_visibility": "shared", "join_approval": True, "admins_only_send": True,
        "visibility": "public"}
    assert await log_after(http, owner, thread_id, 6) == [
        (7, "log:thread-color", {"color": None}),
        (8, "log:thread-emoji", {"emoji": "🎉"}),
        (9, "log:thread-description", {"description": None}),
        (10, "log:thread-settings", {"join_approval": True, "history_visibility": "shared"}),
        (11, "log:thread-settings", {"admins_only_send": True, "visibility": "public"}),
    ]
    info = (await http.get(path, headers=bob.auth)).json()["data"]
    assert (info["name"], info["max_seq"]) == ("Climbers", 11)
    entries = await whole_timeline(http, bob, thread_id)
    assert all(e["author"] == owner.user_id for e in entries[1:])


async def test_patch_refuses_bad_values_and_keeps_the_thread(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    thread_id = await create_group(http, owner)
    path = f"/api/threads/{thread_id}"
    bad: list[dict[str, Any]] = [
        {"color": "red"}, {"color": "#12345G"}, {"color": "#1234567"}, {"emoji": "ab"},
        {"emoji": "👍👍"}, {"emoji": "👍a"}, {"name": ""}, {"name": "   "}, {"name": "n" * 101},
        {"name": "bell\x07"}, {"name": 12}, {"image_url": "ftp://x.example/a"},
        {"image_url": "https://"}, {"image_url": "https://x.example/" + "a" * 1024},
        {"image_url": "https://x.example/a b"}, {"description": "d" * 1001},
        {"description": "nul\x00"}, {"settings": {"visibility": "secret"}},
        {"settings": {"join_approval": None}}, {"settings": {"join_approval": "yes"}},
        {"settings": {"nope": 1}}, {"settings": "all"},
        # One bad field refuses the whole PATCH: the good one is not applied either.
        {"name": "fine", "color": "blue"},
    ]
    for body in bad:
        assert_error(await http.patch(path, headers=owner.auth, json=body), 400, 1001,
                     "invalid_parameter")
    info = (await http.get(path, headers=owner.auth)).json()["data"]
    assert (info["name"], info["max_seq"]) == ("g", 1)


async def test_patch_needs_an_admin_in_a_group(http: httpx.AsyncClient) -> None:
    owner, admin, member, outsider = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, admin, member)
    await appoint(http, owner, thread_id, admin)
    path = f"/api/threads/{thread_id}"
    assert_error(await http.patch(path, headers=member.auth, json={"name": "mine"}),
                 403, 3007, "not_admin")
    assert_error(await http.patch(path, headers=outsider.auth, json={"name": "mine"}),
                 403, 3003, "not_a_member")
    assert_error(await http.patch("/api/threads/tnothing", headers=owner.auth,
                                  json={"name": "x"}), 404, 3001, "thread_not_found")
    done = await http.patch(path, headers=admin.auth, json={"name": "by admin"})
    assert done.json()["data"]["seqs"] == [3]


async def test_direct_thread_looks_by_either_member_but_no_settings(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await direct_thread(http, alice, bob)
    path = f"/api/threads/{thread_id}"
    by_alice = await http.patch(path, headers=alice.auth, json={"color": "#00FF00"})
    by_bob = await http.patch(path, headers=bob.auth, json={"emoji": "🐙", "name": "us"})
    assert (by_alice.json()["data"]["seqs"], by_bob.json()["data"]["seqs"]) == ([1], [2, 3])
    assert_error(await http.patch(path, headers=bob.auth, json={"settings": {
        "join_approval": True}}), 400, 1001, "invalid_parameter")
    for route, body in ((f"{path}/admins", {"user_ids": [bob.user_id]}),
                        (f"{path}/owner", {"user_id": bob.user_id}),
                        (f"{path}/mutes", {"user_ids": [bob.user_id]})):
        assert_error(await http.post(route, headers=alice.auth, json=body), 400, 1001,
                     "invalid_parameter")
    # Either member names either one.
    named = await http.put(f"{path}/nicknames/{alice.user_id}", headers=bob.auth,
                           json={"nickname": "Al"})
    assert named.json()["data"] == {"thread_id": thread_id, "user_id": alice.user_id,
                                    "nickname": "Al", "seq": 4}
    assert (await log_after(http, alice, thread_id, 3)) == [
        (4, "log:user-nickname", {"participant_id": alice.user_id, "nickname": "Al"})]


async def test_admins_appointed_and_dismissed_by_the_owner(http: httpx.AsyncClient) -> None:
    owner, bob, carol, dave, outsider = [await register(http) for _ in range(5)]
    thread_id = await create_group(http, owner, bob, carol, dave)
    admins = f"/api/threads/{thread_id}/admins"
    added = await http.post(admins, headers=owner.auth,
                            json={"user_ids": [carol.user_id, bob.user_id]})
    assert added.json()["data"] == {"thread_id": thread_id, "added": [carol.user_id, bob.user_id],
                                    "removed": [], "admin_ids": [bob.user_id, carol.user_id],
                                    "seq": 2}
    # Already admins: skipped; nothing to do writes nothing.
    again = await http.post(admins, headers=owner.auth, json={"user_ids": [bob.user_id]})
    assert (again.json()["data"]["added"], again.json()["data"]["seq"]) == ([], None)
    assert_error(await http.post(admins, headers=bob.auth, json={"user_ids": [dave.user_id]}),
                 403, 3006, "not_owner")
    assert_error(await http.post(admins, headers=owner.auth, json={"user_ids": [
        dave.user_id, owner.user_id]}), 403, 3008, "cannot_act_on_owner")
    missing = await http.post(admins, headers=owner.auth,
                              json={"user_ids": [dave.user_id, outsider.user_id, "nobody"]})
    assert_error(missing, 403, 3003, "not_a_member")
    assert outsider.user_id in missing.json()["msg"]
    assert "nobody" in missing.json()["msg"]
    assert_error(await http.post(admins, headers=owner.auth, json={"user_ids": []}),
                 400, 1001, "invalid_parameter")
    assert_error(await http.post(admins, headers=outsider.auth, json={"user_ids": [
        dave.user_id]}), 403, 3003, "not_a_member")
    removed = await http.delete(f"{admins}/{bob.user_id}", headers=owner.auth)
    assert removed.json()["data"] == {"thread_id": thread_id, "added": [],
                                      "removed": [bob.user_id], "admin_ids": [carol.user_id],
                                      "seq": 3}
    assert_error(await http.delete(f"{admins}/{bob.user_id}", headers=owner.auth),
                 400, 1001, "invalid_parameter")
    assert_error(await http.delete(f"{admins}/{owner.user_id}", headers=owner.auth),
                 403, 3008, "cannot_act_on_owner")
    assert_error(await http.delete(f"{admins}/{outsider.user_id}", headers=owner.auth),
                 403, 3003, "not_a_member")
    assert_error(await http.delete(f"{admins}/{owner.user_id}", headers=carol.auth),
                 403, 3006, "not_owner")
    assert await log_after(http, dave, thread_id, 1) == [
        (2, "log:thread-admins", {"added": [carol.user_id, bob.user_id]}),
        (3, "log:thread-admins", {"removed": [bob.user_id]})]
    info = (await http.get(f"/api/threads/{thread_id}", headers=dave.auth)).json()["data"]
    assert info["admin_ids"] == [carol.user_id]


async def test_owner_hands_over_and_becomes_an_admin(http: httpx.AsyncClient) -> None:
    owner, bob, carol, outsider = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob, carol)
    path = f"/api/threads/{thread_id}/owner"
    assert_error(await http.post(path, headers=bob.auth, json={"user_id": carol.user_id}),
                 403, 3006, "not_owner")
    assert_error(await http.post(path, headers=owner.auth, json={"user_id": owner.user_id}),
                 400, 1001, "invalid_parameter")
    assert_error(await http.post(path, headers=owner.auth, json={"user_id": outsider.user_id}),
                 403, 3003, "not_a_member")
    assert_error(await http.post(path, headers=owner.auth, json={}), 400, 1001,
                 "invalid_parameter")
    # A muted member handed the thread is muted no more (nobody mutes the owner).
    await http.post(f"/api/threads/{thread_id}/mutes", headers=owner.auth,
                    json={"user_ids": [bob.user_id]})
    handed = await http.post(path, headers=owner.auth, json={"user_id": bob.user_id})
    assert handed.json()["data"] == {"thread_id": thread_id, "owner_id": bob.user_id,
                                     "previous_owner_id": owner.user_id, "seq": 3}
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=bob.auth,
                           json={"client_msg_id": "c1", "body": "mine now"})
    assert sent.json()["data"]["seq"] == 4
    info = (await http.get(f"/api/threads/{thread_id}", headers=carol.auth)).json()["data"]
    assert info["owner_id"] == bob.user_id
    assert {p["user_id"]: p["role"] for p in info["participants"]} == {
        owner.user_id: "admin", bob.user_id: "owner", carol.user_id: "member"}
    assert await log_after(http, carol, thread_id, 2) == [
        (3, "log:thread-owner", {"from": owner.user_id, "to": bob.user_id}),
        (4, "message", "mine now")]
    # The old owner is an admin now: no longer the owner's powers.
    assert_error(await http.post(path, headers=owner.auth, json={"user_id": carol.user_id}),
                 403, 3006, "not_owner")
    assert_error(await http.delete(f"/api/threads/{thread_id}", headers=owner.auth),
                 403, 3006, "not_owner")
    assert (await http.patch(f"/api/threads/{thread_id}", headers=owner.auth,
                             json={"name": "still admin"})).is_success


async def test_nicknames_by_the_member_or_an_admin(http: httpx.AsyncClient) -> None:
    owner, bob, carol, outsider = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob, carol)
    nick = f"/api/threads/{thread_id}/nicknames"
    own = await http.put(f"{nick}/{bob.user_id}", headers=bob.auth, json={"nickname": "B"})
    assert own.json()["data"]["seq"] == 2
    same = await http.put(f"{nick}/{bob.user_id}", headers=bob.auth, json={"nickname": "B"})
    assert same.json()["data"]["seq"] is None
    assert_error(await http.put(f"{nick}/{carol.user_id}", headers=bob.auth,
                                json={"nickname": "C"}), 403, 3007, "not_admin")
    by_owner = await http.put(f"{nick}/{carol.user_id}", headers=owner.auth,
                              json={"nickname": "Caz"})
    assert by_owner.json()["data"]["seq"] == 3
    cleared = await http.put(f"{nick}/{bob.user_id}", headers=owner.auth, json={"nickname": None})
    assert cleared.json()["data"] == {"thread_id": thread_id, "user_id": bob.user_id,
                                      "nickname": None, "seq": 4}
    for body in ({"nickname": "n" * 65}, {"nickname": ""}, {"nickname": "tab\there"},
                 {"nickname": 5}, {}):
        assert_error(await http.put(f"{nick}/{carol.user_id}", headers=owner.auth, json=body),
                     400, 1001, "invalid_parameter")
    assert_error(await http.put(f"{nick}/{outsider.user_id}", headers=owner.auth,
                                json={"nickname": "x"}), 403, 3003, "not_a_member")
    assert_error(await http.put(f"{nick}/{carol.user_id}", headers=outsider.auth,
                                json={"nickname": "x"}), 403, 3003, "not_a_member")
    assert await log_after(http, carol, thread_id, 1) == [
        (2, "log:user-nickname", {"participant_id": bob.user_id, "nickname": "B"}),
        (3, "log:user-nickname", {"participant_id": carol.user_id, "nickname": "Caz"}),
        (4, "log:user-nickname", {"participant_id": bob.user_id, "nickname": None})]


async def test_dissolved_group_is_readable_but_refuses_every_change(
    http: httpx.AsyncClient,
) -> None:
    owner, admin, member = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, owner, admin, member)
    await appoint(http, owner, thread_id, admin)
    path = f"/api/threads/{thread_id}"
    assert_error(await http.delete(path, headers=admin.auth), 403, 3006, "not_owner")
    assert_error(await http.delete(path, headers=member.auth), 403, 3006, "not_owner")
    ended = await http.delete(path, headers=owner.auth)
    assert ended.json()["data"] == {"thread_id": thread_id, "status": "dissolved", "seq": 3}
    assert await log_after(http, member, thread_id, 2) == [(3, "log:thread-dissolved", {})]
    writes = [
        http.patch(path, headers=owner.auth, json={"name": "again"}),
        http.delete(path, headers=owner.auth),
        http.post(f"{path}/admins", headers=owner.auth, json={"user_ids": [member.user_id]}),
        http.delete(f"{path}/admins/{admin.user_id}", headers=owner.auth),
        http.post(f"{path}/owner", headers=owner.auth, json={"user_id": member.user_id}),
        http.post(f"{path}/mutes", headers=owner.auth, json={"user_ids": [member.user_id]}),
        http.delete(f"{path}/mutes/{member.user_id}", headers=owner.auth),
        http.put(f"{path}/nicknames/{member.user_id}", headers=member.auth,
                 json={"nickname": "m"}),
        http.post(f"{path}/announcements", headers=owner.auth, json={"content": "hi"}),
        http.delete(f"{path}/announcements/1", headers=owner.auth),
    ]
    for write in writes:
        assert_error(await write, 403, 3002, "thread_dissolved")
    # Members stay members and read the history, and the notices.
    assert len(await whole_timeline(http, member, thread_id)) == 3
    assert (await http.get(f"{path}/announcements", headers=member.auth)).json()["data"] == []


async def test_dissolving_tells_members_over_mqtt(server: Stack, http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner, bob)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as b:
        assert granted(await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)) == [1]
        assert granted(await b.subscribe(f"{prefix}/t/{thread_id}", qos=1)) == [1]
        renamed = await http.patch(f"/api/threads/{thread_id}", headers=owner.auth,
                                   json={"name": "Renamed", "settings": {"join_approval": True}})
        assert renamed.json()["data"]["seqs"] == [2, 3]
        event = await next_event(b, lambda t, e: e.get("type") == "event" and e["seq"] == 2)
        assert (event["logMessageType"], event["logMessageData"]) == (
            "log:thread-name", {"name": "Renamed"})
        event = await next_event(b, lambda t, e: e.get("type") == "event" and e["seq"] == 3)
        assert event["logMessageData"] == {"join_approval": True}
        assert (await http.delete(f"/api/threads/{thread_id}", headers=owner.auth)).is_success
        dissolved = await next_event(b, lambda t, e: e.get("type") == "event")
        assert (dissolved["seq"], dissolved["logMessageType"]) == (4, "log:thread-dissolved")
        removed = await next_event(b, lambda t, e: e.get("type") == "thread_removed")
    assert removed == {"type": "thread_removed", "thread_id": thread_id, "by": owner.user_id,
                       "reason": "dissolved"}
    # What MQTT carried is what history holds.
    history = await whole_timeline(http, bob, thread_id)
    assert history[3] == dissolved


async def test_deleting_a_direct_thread_purges_it_for_both(
    server: Stack, http: httpx.AsyncClient,
) -> None:
    alice, bob, outsider = [await register(http) for _ in range(3)]
    thread_id = await direct_thread(http, alice, bob)
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                           json={"client_msg_id": "c1", "body": "secret"})
    assert sent.status_code == 201, sent.text
    path = f"/api/threads/{thread_id}"
    assert_error(await http.delete(path, headers=outsider.auth), 403, 3003, "not_a_member")
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, alice) as a:
        assert granted(await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)) == [1]
        ended = await http.delete(path, headers=bob.auth)
        assert ended.json()["data"] == {"thread_id": thread_id, "status": "deleted", "seq": None}
        removed = await next_event(a, lambda t, e: e.get("type") == "thread_removed")
    assert (removed["reason"], removed["by"]) == ("deleted", bob.user_id)
    for reader in (alice, bob):
        assert_error(await http.get(f"{path}/messages", headers=reader.auth), 404, 3001,
                     "thread_not_found")
        assert_error(await http.get(path, headers=reader.auth), 404, 3001, "thread_not_found")
    assert_error(await http.delete(path, headers=alice.auth), 404, 3001, "thread_not_found")
    # The pair may talk again: a new thread, an empty history.
    again = await http.post("/api/threads", headers=alice.auth,
                            json={"type": "direct", "user_ids": [bob.user_id]})
    assert again.status_code == 201, again.text
    new_id = again.json()["data"]["thread_id"]
    assert new_id != thread_id
    assert (await http.get(f"/api/threads/{new_id}/messages", headers=bob.auth)).json()[
        "data"] == []


async def test_a_room_stays_public_and_named(http: httpx.AsyncClient) -> None:
    owner, joiner = await register(http), await register(http)
    created = await http.post("/api/threads", headers=owner.auth,
                              json={"type": "room", "name": "Lobby", "capacity": 10})
    assert created.status_code == 201, created.text
    thread_id = created.json()["data"]["thread_id"]
    path = f"/api/threads/{thread_id}"
    for body in ({"settings": {"visibility": "private"}}, {"name": None}):
        assert_error(await http.patch(path, headers=owner.auth, json=body), 400, 1001,
                     "invalid_parameter")
    kept = await http.patch(path, headers=owner.auth, json={"settings": {
        "visibility": "public", "admins_only_send": True}})
    assert kept.json()["data"]["seqs"] == [2]
    assert (await http.post(f"{path}/join", headers=joiner.auth)).is_success
    assert_error(await http.patch(path, headers=joiner.auth, json={"name": "Mine"}),
                 403, 3007, "not_admin")
    assert (await http.delete(path, headers=owner.auth)).json()["data"]["status"] == "dissolved"
    # The joiner reads from their join on (history_visibility joined), the end included.
    assert [(seq, kind) for seq, kind, _ in await log_after(http, joiner, thread_id, 0)] == [
        (3, "log:subscribe"), (4, "log:thread-dissolved")]
