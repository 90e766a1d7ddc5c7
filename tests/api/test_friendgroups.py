"""Friend groups over real HTTP: the owner's private, named lists of friends."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_friends import befriend
from tests.helpers import Account, register

GROUPS = "/api/friends/groups"


async def make_group(http: httpx.AsyncClient, owner: Account, name: str) -> dict[str, Any]:
    response = await http.post(GROUPS, headers=owner.auth, json={"name": name})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_groups_are_created_listed_renamed_and_deleted(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    work = await make_group(http, owner, "  Work  ")
    assert (work["name"], work["member_count"]) == ("Work", 0)
    assert work["created_at"]
    family = await make_group(http, owner, "f" * 30)
    listed = (await http.get(GROUPS, headers=owner.auth)).json()["data"]
    assert [(g["id"], g["name"]) for g in listed] == [(work["id"], "Work"),
                                                     (family["id"], "f" * 30)]

    for name in ("Work", "   ", "", "x" * 31):
        response = await http.post(GROUPS, headers=owner.auth, json={"name": name})
        if name == "Work":
            assert_error(response, 409, 1010, "already_exists")
        else:
            assert_error(response, 400, 1001, "invalid_parameter")
    assert_error(await http.post(GROUPS, headers=owner.auth, json={"name": 3}), 400, 1001,
                 "invalid_parameter")

    path = f"{GROUPS}/{work['id']}"
    assert_error(await http.patch(path, headers=owner.auth, json={"name": "f" * 30}), 409, 1010,
                 "already_exists")
    assert_error(await http.patch(path, headers=owner.auth, json={"name": ""}), 400, 1001,
                 "invalid_parameter")
    same = await http.patch(path, headers=owner.auth, json={"name": "Work"})
    assert same.json()["data"]["name"] == "Work"
    renamed = await http.patch(path, headers=owner.auth, json={"name": "Colleagues"})
    assert renamed.json()["data"] == {**work, "name": "Colleagues"}
    # A name freed by the rename can be used again.
    await make_group(http, owner, "Work")

    deleted = await http.delete(path, headers=owner.auth)
    assert deleted.json() == {"code": 0, "msg": "ok", "data": {"id": work["id"]}}
    assert_error(await http.get(path, headers=owner.auth), 404, 1005, "not_found")
    assert_error(await http.delete(path, headers=owner.auth), 404, 1005, "not_found")
    names = [g["name"] for g in (await http.get(GROUPS, headers=owner.auth)).json()["data"]]
    assert names == ["f" * 30, "Work"]
    # Another owner may use the same names.
    await make_group(http, await register(http), "Work")


async def test_only_the_owner_sees_or_changes_a_group(http: httpx.AsyncClient) -> None:
    owner, other = await register(http), await register(http)
    await befriend(http, owner, other)
    group = await make_group(http, owner, "secret")
    path = f"{GROUPS}/{group['id']}"
    for response in (
        await http.get(path, headers=other.auth),
        await http.patch(path, headers=other.auth, json={"name": "mine"}),
        await http.delete(path, headers=other.auth),
        await http.get(f"{path}/members", headers=other.auth),
        await http.post(f"{path}/members", headers=other.auth, json={"user_ids": [owner.user_id]}),
        await http.delete(f"{path}/members/{owner.user_id}", headers=other.auth),
        await http.get(f"{GROUPS}/999999999", headers=owner.auth),
        await http.get(f"{GROUPS}/99999999999999999999999", headers=owner.auth),
        await http.get(f"{GROUPS}/abc", headers=owner.auth),
    ):
        assert_error(response, 404, 1005, "not_found")
    assert (await http.get(GROUPS, headers=other.auth)).json()["data"] == []
    detail = (await http.get(path, headers=owner.auth)).json()["data"]
    assert (detail["name"], detail["members"]) == ("secret", [])


async def test_members_must_be_friends_and_are_listed(http: httpx.AsyncClient) -> None:
    owner, bob, carol, stranger = [await register(http) for _ in range(4)]
    await befriend(http, owner, bob)
    await befriend(http, carol, owner)
    group = await make_group(http, owner, "team")
    members = f"{GROUPS}/{group['id']}/members"

    refused = await http.post(members, headers=owner.auth,
                              json={"user_ids": [bob.user_id, stranger.user_id, "nobody-x"]})
    assert_error(refused, 400, 1001, "invalid_parameter")
    assert stranger.user_id in refused.json()["msg"]
    assert "nobody-x" in refused.json()["msg"]
    assert bob.user_id not in refused.json()["msg"]
    assert (await http.get(members, headers=owner.auth)).json()["data"] == []  # all or nothing
    assert_error(await http.post(members, headers=owner.auth, json={"user_ids": []}), 400, 1001,
                 "invalid_parameter")
    assert_error(await http.post(members, headers=owner.auth, json={}), 400, 1001,
                 "invalid_parameter")

    added = await http.post(members, headers=owner.auth,
                            json={"user_ids": [bob.user_id, carol.user_id, bob.user_id]})
    assert added.json()["data"] == {"group_id": group["id"],
                                    "added": [bob.user_id, carol.user_id]}
    again = await http.post(members, headers=owner.auth, json={"user_ids": [carol.user_id]})
    assert_error(again, 409, 1010, "already_exists")
    assert carol.user_id in again.json()["msg"]

    listed = (await http.get(members, headers=owner.auth)).json()["data"]
    assert [m["id"] for m in listed] == [bob.user_id, carol.user_id]
    assert all(m["deleted"] is False and "email" not in m for m in listed)
    detail = (await http.get(f"{GROUPS}/{group['id']}", headers=owner.auth)).json()["data"]
    assert (detail["member_count"], [m["id"] for m in detail["members"]]) == (
        2, [bob.user_id, carol.user_id])
    assert (await http.get(GROUPS, headers=owner.auth)).json()["data"][0]["member_count"] == 2
    # The friend list and the friend's detail name the groups.
    friends = (await http.get("/api/friends", headers=owner.auth)).json()["data"]
    assert {f["user"]["id"]: f["groups"] for f in friends} == {
        bob.user_id: [{"id": group["id"], "name": "team"}],
        carol.user_id: [{"id": group["id"], "name": "team"}]}
    bob_detail = await http.get(f"/api/friends/{bob.user_id}", headers=owner.auth)
    assert bob_detail.json()["data"]["groups"] == [{"id": group["id"], "name": "team"}]

    removed = await http.delete(f"{members}/{bob.user_id}", headers=owner.auth)
    assert removed.json()["data"] == {"group_id": group["id"], "removed": [bob.user_id]}
    assert_error(await http.delete(f"{members}/{bob.user_id}", headers=owner.auth), 404, 1005,
                 "not_found")
    assert [m["id"] for m in (await http.get(members, headers=owner.auth)).json()["data"]] == [
        carol.user_id]
    assert bob.user_id in [f["user"]["id"] for f in (
        await http.get("/api/friends", headers=owner.auth)).json()["data"]]  # still a friend
    # Deleting the group ends no friendship.
    await http.delete(f"{GROUPS}/{group['id']}", headers=owner.auth)
    assert len((await http.get("/api/friends", headers=owner.auth)).json()["data"]) == 2
