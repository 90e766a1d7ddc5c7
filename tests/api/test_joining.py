"""Who is in a thread: adding (friends only for plain members), removing, leaving and rejoining,
joining public groups, invitations and join requests with approval, and dissolved threads, over
real HTTP on both stacks; the events over a real MQTT client. Rooms: tests/api/test_rooms.py."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_friends import befriend
from tests.api.test_threads import send
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    whole_timeline,
)
from tests.stacks import Stack


async def set_settings(http: httpx.AsyncClient, owner: Account, thread_id: str,
                       **settings: Any) -> None:
    response = await http.patch(f"/api/threads/{thread_id}", headers=owner.auth,
                                json={"settings": settings})
    assert response.status_code == 200, response.text


async def appoint(http: httpx.AsyncClient, owner: Account, thread_id: str, *admins: Account
                  ) -> None:
    response = await http.post(f"/api/threads/{thread_id}/admins", headers=owner.auth,
                               json={"user_ids": [a.user_id for a in admins]})
    assert response.status_code == 200, response.text


async def post(http: httpx.AsyncClient, path: str, account: Account,
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await http.post(path, headers=account.auth, json=body or {})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def roles(http: httpx.AsyncClient, viewer: Account, thread_id: str) -> dict[str, str]:
    response = await http.get(f"/api/threads/{thread_id}", headers=viewer.auth)
    assert response.status_code == 200, response.text
    return {p["user_id"]: p["role"] for p in response.json()["data"]["participants"]}


async def listed(http: httpx.AsyncClient, viewer: Account, **params: str) -> list[str]:
    response = await http.get("/api/threads", headers=viewer.auth, params=params)
    assert response.status_code == 200, response.text
    return [t["thread_id"] for t in response.json()["data"]]


async def test_a_direct_thread_from_a_stranger_is_a_message_request(
    http: httpx.AsyncClient,
) -> None:
    alice, bob, friend = [await register(http) for _ in range(3)]
    await befriend(http, bob, friend)
    opened = await http.post("/api/threads", headers=alice.auth,
                             json={"type": "direct", "user_ids": [bob.user_id]})
    stranger_thread = opened.json()["data"]["thread_id"]
    assert stranger_thread in await listed(http, alice)  # the opener's side works as usual
    assert stranger_thread not in await listed(http, bob)
    assert stranger_thread in await listed(http, bob, requests="true")
    by_friend = await http.post("/api/threads", headers=friend.auth,
                                json={"type": "direct", "user_ids": [bob.user_id]})
    friend_thread = by_friend.json()["data"]["thread_id"]
    assert friend_thread in await listed(http, bob)
    assert friend_thread not in await listed(http, bob, requests="true")


async def test_plain_members_add_only_friends_admins_anyone(http: httpx.AsyncClient) -> None:
    owner, admin, bob, friend, stranger, other = [await register(http) for _ in range(6)]
    await befriend(http, bob, friend)
    thread_id = await create_group(http, owner, admin, bob)
    await appoint(http, owner, thread_id, admin)
    members = f"/api/threads/{thread_id}/members"
    refused = await http.post(members, headers=bob.auth,
                              json={"user_ids": [friend.user_id, stranger.user_id]})
    assert_error(refused, 403, 1004, "forbidden")
    assert stranger.user_id in refused.json()["msg"]
    assert friend.user_id not in await roles(http, owner, thread_id)  # nothing added
    added = await post(http, members, bob, {"user_ids": [friend.user_id]})
    assert added["added"] == [friend.user_id]
    assert added["invited"] == []
    by_admin = await post(http, members, admin, {"user_ids": [stranger.user_id]})
    by_owner = await post(http, members, owner, {"user_ids": [other.user_id]})
    assert (by_admin["seq"], by_owner["seq"]) == (added["seq"] + 1, added["seq"] + 2)
    assert_error(await http.post(members, headers=owner.auth, json={"user_ids": ["nobody-x"]}),
                 404, 2006, "user_not_found")
    assert_error(await http.post("/api/threads/tmissing/members", headers=owner.auth,
                                 json={"user_ids": [bob.user_id]}), 404, 3001, "thread_not_found")
    timeline = await whole_timeline(http, owner, thread_id)  # gapless
    joins = [(e["author"], e["logMessageData"]["added_participants"]) for e in timeline
             if e.get("logMessageType") == "log:subscribe"]
    assert joins == [(owner.user_id, [owner.user_id, admin.user_id, bob.user_id]),
                     (bob.user_id, [friend.user_id]), (admin.user_id, [stranger.user_id]),
                     (owner.user_id, [other.user_id])]
    # A newcomer starts reading at the entry that added them: nothing unread.
    info = (await http.get(f"/api/threads/{thread_id}", headers=stranger.auth)).json()["data"]
    assert {p["user_id"]: p["read_seq"] for p in info["participants"]}[stranger.user_id] == \
        by_admin["seq"]


async def test_removal_rules(http: httpx.AsyncClient) -> None:
    owner, admin, admin2, bob, carol = [await register(http) for _ in range(5)]
    thread_id = await create_group(http, owner, admin, admin2, bob, carol)
    await appoint(http, owner, thread_id, admin, admin2)
    members = f"/api/threads/{thread_id}/members"
    for actor, target, status, code, error in (
        (bob, carol, 403, 3007, "not_admin"),  # plain members remove nobody
        (bob, owner, 403, 3007, "not_admin"),
        (admin, owner, 403, 3008, "cannot_act_on_owner"),  # nobody removes the owner
        (admin, admin2, 403, 3008, "cannot_act_on_owner"),  # only the owner removes admins
    ):
        assert_error(await http.delete(f"{members}/{target.user_id}", headers=actor.auth),
                     status, code, error)
    assert set(await roles(http, owner, thread_id)) == {
        u.user_id for u in (owner, admin, admin2, bob, carol)}
    removed = await http.delete(f"{members}/{carol.user_id}", headers=admin.auth)
    assert removed.json()["data"]["removed"] == [carol.user_id]
    assert (await http.delete(f"{members}/{admin2.user_id}", headers=owner.auth)).is_success
    assert_error(await http.delete(f"{members}/{carol.user_id}", headers=admin.auth),
                 403, 3003, "not_a_member")
    # Leaving needs no rights; the owner leaving hands over to the longest-serving admin.
    assert (await http.delete(f"{members}/{owner.user_id}", headers=owner.auth)).is_success
    assert await roles(http, bob, thread_id) == {admin.user_id: "owner", bob.user_id: "member"}
    timeline = await whole_timeline(http, bob, thread_id)
    leaves = [e["logMessageData"] for e in timeline if e.get("logMessageType") ==
              "log:unsubscribe"]
    assert leaves == [{"removed_participant": carol.user_id},
                      {"removed_participant": admin2.user_id},
                      {"left_participant_fbid": owner.user_id}]


async def test_leave_and_rejoin_reads_from_the_latest_join(http: httpx.AsyncClient) -> None:
    owner, bob = await register(http), await register(http)
    thread_id = await create_group(http, owner)
    await set_settings(http, owner, thread_id, visibility="public")
    await send(http, owner, thread_id, "before bob")
    first = await post(http, f"/api/threads/{thread_id}/join", bob)
    assert first == {"thread_id": thread_id, "joined": True, "pending": False,
                     "seq": first["seq"], "invitation_id": None}
    left = await http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}", headers=bob.auth)
    assert left.json()["data"]["seq"] == first["seq"] + 1
    await send(http, owner, thread_id, "while bob was away")
    again = await post(http, f"/api/threads/{thread_id}/join", bob)
    assert again["seq"] == first["seq"] + 3
    assert_error(await http.post(f"/api/threads/{thread_id}/join", headers=bob.auth),
                 409, 3005, "already_member")
    info = (await http.get(f"/api/threads/{thread_id}", headers=bob.auth)).json()["data"]
    assert {p["user_id"]: p["read_seq"] for p in info["participants"]}[bob.user_id] == \
        again["seq"]
    # Under `joined` visibility bob reads from his latest join, not his first.
    history = (await http.get(f"/api/threads/{thread_id}/messages", headers=bob.auth)).json()
    assert [e["seq"] for e in history["data"]] == [again["seq"]]
    assert history["data"][0]["logMessageData"] == {"added_participants": [bob.user_id]}
    await whole_timeline(http, owner, thread_id)  # gapless


async def test_join_is_for_public_groups(http: httpx.AsyncClient) -> None:
    owner, bob, carol = [await register(http) for _ in range(3)]
    private = await create_group(http, owner)
    assert_error(await http.post(f"/api/threads/{private}/join", headers=bob.auth),
                 403, 1004, "forbidden")
    direct = (await http.post("/api/threads", headers=owner.auth,
                              json={"type": "direct", "user_ids": [carol.user_id]})).json()
    assert_error(await http.post(f"/api/threads/{direct['data']['thread_id']}/join",
                                 headers=bob.auth), 403, 1004, "forbidden")
    assert_error(await http.post("/api/threads/tmissing/join", headers=bob.auth),
                 404, 3001, "thread_not_found")
    assert_error(await http.post(f"/api/threads/{private}/join"), 401, 2001, "token_invalid")
    await set_settings(http, owner, private, visibility="public")
    joined = await post(http, f"/api/threads/{private}/join", bob)
    assert joined["joined"] is True
    assert bob.user_id in await roles(http, owner, private)


async def test_invitations_when_adds_need_approval(http: httpx.AsyncClient) -> None:
    owner, admin, bob, carol, dave, outsider = [await register(http) for _ in range(6)]
    await befriend(http, bob, carol)
    await befriend(http, bob, dave)
    thread_id = await create_group(http, owner, admin, bob)
    await appoint(http, owner, thread_id, admin)
    await set_settings(http, owner, thread_id, join_approval=True)
    members = f"/api/threads/{thread_id}/members"
    invitations = f"/api/threads/{thread_id}/invitations"
    seq_before = (await whole_timeline(http, owner, thread_id))[-1]["seq"]
    invited = await post(http, members, bob, {"user_ids": [carol.user_id, dave.user_id]})
    assert invited == {"thread_id": thread_id, "added": [], "invited": [carol.user_id,
                                                                          dave.user_id],
                       "seq": None}
    # Inviting again stores no second invitation: they are still invited.
    assert (await post(http, members, bob, {"user_ids": [carol.user_id]}))["invited"] == [
        carol.user_id]
    assert (await whole_timeline(http, owner, thread_id))[-1]["seq"] == seq_before
    pending = (await http.get(invitations, headers=admin.auth,
                              params={"status": "pending"})).json()["data"]
    assert [(i["user_id"], i["inviter_id"], i["status"]) for i in pending] == [
        (dave.user_id, bob.user_id, "pending"), (carol.user_id, bob.user_id, "pending")]
    by_user = {i["user_id"]: i["invitation_id"] for i in pending}
    for account, status, code, error in ((bob, 403, 3007, "not_admin"),
                                         (outsider, 403, 3003, "not_a_member")):
        assert_error(await http.get(invitations, headers=account.auth), status, code, error)
        assert_error(await http.post(f"{invitations}/{by_user[carol.user_id]}/approve",
                                     headers=account.auth), status, code, error)
    assert_error(await http.get(invitations, headers=owner.auth, params={"status": "maybe"}),
                 400, 1001, "invalid_parameter")
    approved = await post(http, f"{invitations}/{by_user[carol.user_id]}/approve", admin)
    assert (approved["status"], approved["decided_by"], approved["seq"]) == (
        "approved", admin.user_id, seq_before + 1)
    assert carol.user_id in await roles(http, owner, thread_id)
    rejected = await post(http, f"{invitations}/{by_user[dave.user_id]}/reject", owner)
    assert (rejected["status"], rejected["seq"]) == ("rejected", None)
    assert dave.user_id not in await roles(http, owner, thread_id)
    for iid in by_user.values():  # decided once, for good
        for verb in ("approve", "reject"):
            assert_error(await http.post(f"{invitations}/{iid}/{verb}", headers=owner.auth),
                         409, 3012, "invitation_decided")
    assert_error(await http.post(f"{invitations}/999999999/approve", headers=owner.auth),
                 404, 1005, "not_found")
    other = await create_group(http, owner)  # an invitation answers only in its own thread
    assert_error(await http.post(f"/api/threads/{other}/invitations/{by_user[dave.user_id]}"
                                 "/approve", headers=owner.auth), 404, 1005, "not_found")
    listed = (await http.get(invitations, headers=owner.auth)).json()["data"]
    assert [(i["user_id"], i["status"]) for i in listed] == [
        (dave.user_id, "rejected"), (carol.user_id, "approved")]
    # Admins' adds need no approval.
    direct_add = await post(http, members, admin, {"user_ids": [dave.user_id]})
    assert direct_add["added"] == [dave.user_id]
    timeline = await whole_timeline(http, owner, thread_id)
    assert [(e["author"], e["logMessageData"]) for e in timeline[-2:]] == [
        (admin.user_id, {"added_participants": [carol.user_id]}),
        (admin.user_id, {"added_participants": [dave.user_id]})]


async def test_join_requests_when_joins_need_approval(http: httpx.AsyncClient) -> None:
    owner, bob, carol = [await register(http) for _ in range(3)]
    thread_id = await create_group(http, owner)
    await set_settings(http, owner, thread_id, visibility="public", join_approval=True)
    join = f"/api/threads/{thread_id}/join"
    asked = await post(http, join, bob)
    assert (asked["joined"], asked["pending"], asked["seq"]) == (False, True, None)
    assert (await post(http, join, bob))["invitation_id"] == asked["invitation_id"]
    [request] = (await http.get(f"/api/threads/{thread_id}/invitations",
                                headers=owner.auth)).json()["data"]
    assert (request["user_id"], request["inviter_id"]) == (bob.user_id, None)
    approved = await post(http, f"/api/threads/{thread_id}/invitations/"
                                f"{asked['invitation_id']}/approve", owner)
    assert approved["seq"] is not None
    assert bob.user_id in await roles(http, owner, thread_id)
    # The owner adding someone who asked settles their request.
    carol_asked = await post(http, join, carol)
    await post(http, f"/api/threads/{thread_id}/members", owner, {"user_ids": [carol.user_id]})
    assert_error(await http.post(f"/api/threads/{thread_id}/invitations/"
                                 f"{carol_asked['invitation_id']}/reject", headers=owner.auth),
                 409, 3012, "invitation_decided")


async def test_a_dissolved_thread_takes_no_membership_change(http: httpx.AsyncClient) -> None:
    owner, bob, carol, dave = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, bob, carol)
    await set_settings(http, owner, thread_id, visibility="public", join_approval=True)
    asked = await post(http, f"/api/threads/{thread_id}/join", dave)
    assert (await http.delete(f"/api/threads/{thread_id}", headers=owner.auth)).is_success
    last = (await whole_timeline(http, owner, thread_id))[-1]["seq"]
    members = f"/api/threads/{thread_id}/members"
    for response in (
        await http.post(members, headers=owner.auth, json={"user_ids": [dave.user_id]}),
        await http.delete(f"{members}/{bob.user_id}", headers=owner.auth),
        await http.post(f"/api/threads/{thread_id}/join", headers=dave.auth),
        await http.post(f"/api/threads/{thread_id}/invitations/{asked['invitation_id']}"
                        "/approve", headers=owner.auth),
    ):
        assert_error(response, 403, 3002, "thread_dissolved")
    # Leaving is still allowed, and writes nothing to the closed timeline.
    left = await http.delete(f"{members}/{carol.user_id}", headers=carol.auth)
    assert left.json()["data"] == {"thread_id": thread_id, "removed": [carol.user_id],
                                   "seq": None}
    assert (await whole_timeline(http, owner, thread_id))[-1]["seq"] == last


async def test_membership_events_over_mqtt(server: Stack, http: httpx.AsyncClient) -> None:
    owner, admin, bob, carol = [await register(http) for _ in range(4)]
    thread_id = await create_group(http, owner, admin)
    await appoint(http, owner, thread_id, admin)
    await set_settings(http, owner, thread_id, visibility="public", join_approval=True)
    prefix = server.settings.topic_prefix

    def personal(kind: str) -> Any:
        return lambda topic, event: topic.startswith(f"{prefix}/u/") and event["type"] == kind

    async with (mqtt_session(server.settings, admin) as a, mqtt_session(server.settings, bob) as b,
                mqtt_session(server.settings, carol) as c):
        for client, account in ((a, admin), (b, bob), (c, carol)):
            await client.subscribe(f"{prefix}/u/{account.user_id}", qos=1)
        asked = await post(http, f"/api/threads/{thread_id}/join", bob)
        told = await next_event(a, personal("invitation"))
        assert told["invitation_id"] == asked["invitation_id"]
        assert (told["user_id"], told["inviter_id"], told["status"]) == (bob.user_id, None,
                                                                         "pending")
        await post(http, f"/api/threads/{thread_id}/invitations/{asked['invitation_id']}"
                         "/approve", admin)
        added = await next_event(b, personal("thread_added"))
        assert (added["thread_id"], added["by"]) == (thread_id, admin.user_id)
        assert bob.user_id in added["thread"]["participant_ids"]
        decided = await next_event(b, personal("invitation"))
        assert decided["status"] == "approved"
        refused = await post(http, f"/api/threads/{thread_id}/join", carol)
        await post(http, f"/api/threads/{thread_id}/invitations/{refused['invitation_id']}"
                         "/reject", owner)
        rejected = await next_event(c, personal("invitation"))
        assert (rejected["invitation_id"], rejected["status"]) == (refused["invitation_id"],
                                                                   "rejected")
        await http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}", headers=admin.auth)
        removed = await next_event(b, personal("thread_removed"))
        assert (removed["reason"], removed["by"]) == ("removed", admin.user_id)
        await http.delete(f"/api/threads/{thread_id}/members/{admin.user_id}",
                          headers=admin.auth)
        gone = await next_event(a, personal("thread_removed"))
        assert (gone["reason"], gone["by"]) == ("left", admin.user_id)
