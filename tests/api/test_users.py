"""User search and profiles over real HTTP: matching, paging, the viewer's relation to each user,
and what is never shown (password hashes, email and phone, deleted users' names)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_friends import befriend, soft_delete
from tests.helpers import Account, register, unique_id
from tests.stacks import Stack


async def search(http: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/users", headers=account.auth, params=params)
    assert response.status_code == 200, response.text
    assert "password" not in response.text
    assert "$2b$" not in response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def test_search_by_name_email_or_id(http: httpx.AsyncClient) -> None:
    word = tag()
    email = f"{unique_id()}@example.com"
    viewer = await register(http, name=f"me {word}")
    upper = await register(http, name=f"A{word.upper()}z")
    lower = await register(http, name=f"b{word}")
    by_email = await register(http, name="plain", email=email)
    await register(http, name=f"{word[:4]} {word[4:]}")  # no substring match

    found = await search(http, viewer, q=word.upper())
    assert [u["id"] for u in found["items"]] == [upper.user_id, lower.user_id]  # by name
    assert (found["total"], found["page"], found["page_size"]) == (2, 1, 20)
    item = found["items"][0]
    assert item["name"] == f"A{word.upper()}z"
    assert (item["is_friend"], item["deleted"]) == (False, False)
    assert "email" not in item
    assert "phone" not in item

    assert [u["id"] for u in (await search(http, viewer, q=email.upper()))["items"]] == [
        by_email.user_id]
    assert (await search(http, viewer, q=email[:-4]))["items"] == []  # email: exact only
    # An exact id comes first, before name matches.
    exact = await search(http, viewer, q=lower.user_id)
    assert exact["items"][0]["id"] == lower.user_id
    # The searcher is never among the results, even by id.
    assert (await search(http, viewer, q=viewer.user_id))["items"] == []
    # LIKE wildcards in the query are taken literally.
    literal = await register(http, name=f"{word}_%1")
    await register(http, name=f"{word}xx1")
    assert [u["id"] for u in (await search(http, viewer, q=f"{word}_%"))["items"]] == [
        literal.user_id]


async def test_search_pages(http: httpx.AsyncClient) -> None:
    word = tag()
    viewer = await register(http)
    made = [await register(http, name=f"{word}{i:02d}") for i in range(21)]
    first = await search(http, viewer, q=word)
    assert (first["total"], len(first["items"]), first["page_size"]) == (21, 20, 20)
    assert [u["id"] for u in first["items"]] == [a.user_id for a in made[:20]]  # by name
    pages = [await search(http, viewer, q=word, page=p, page_size=8) for p in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [8, 8, 5, 0]
    assert [u["id"] for p in pages for u in p["items"]] == [a.user_id for a in made]
    big = await search(http, viewer, q=word, page_size=100)
    assert len(big["items"]) == 21
    bad: list[dict[str, str | int]] = [
        {"q": word, "page_size": 101}, {"q": word, "page_size": 0}, {"q": word, "page": 0},
        {"q": word, "page": "x"}, {"q": ""}, {"q": "   "}, {}, {"q": "x" * 101}]
    for params in bad:
        assert_error(await http.get("/api/users", headers=viewer.auth, params=params), 400, 1001,
                     "invalid_parameter")
    assert_error(await http.get("/api/users", params={"q": word}), 401, 2001, "token_invalid")


async def test_search_and_profile_show_the_viewers_relation(http: httpx.AsyncClient) -> None:
    word = tag()
    viewer = await register(http)
    friend = await register(http, name=f"f{word}")
    stranger = await register(http, name=f"s{word}")
    await befriend(http, viewer, friend)
    found = await search(http, viewer, q=word)
    assert {u["id"]: u["is_friend"] for u in found["items"]} == {
        friend.user_id: True, stranger.user_id: False}

    profile = await http.get(f"/api/users/{stranger.user_id}", headers=viewer.auth)
    assert profile.status_code == 200
    data = profile.json()["data"]
    assert (data["id"], data["name"], data["deleted"]) == (stranger.user_id, f"s{word}", False)
    assert (data["is_friend"], data["blocked"], data["friend_groups"]) == (False, False, [])
    assert "email" not in data
    assert "password_hash" not in data

    group = await http.post("/api/friends/groups", headers=viewer.auth, json={"name": "work"})
    group_id = group.json()["data"]["id"]
    await http.post(f"/api/friends/groups/{group_id}/members", headers=viewer.auth,
                    json={"user_ids": [friend.user_id]})
    data = (await http.get(f"/api/users/{friend.user_id}", headers=viewer.auth)).json()["data"]
    assert data["is_friend"] is True
    assert data["friend_groups"] == [{"id": group_id, "name": "work"}]
    # The friend does not see the viewer's groups.
    theirs = (await http.get(f"/api/users/{viewer.user_id}", headers=friend.auth)).json()["data"]
    assert (theirs["is_friend"], theirs["friend_groups"]) == (True, [])

    await http.post("/api/blocks", headers=viewer.auth, json={"user_id": stranger.user_id})
    data = (await http.get(f"/api/users/{stranger.user_id}", headers=viewer.auth)).json()["data"]
    assert data["blocked"] is True
    back = (await http.get(f"/api/users/{viewer.user_id}", headers=stranger.auth)).json()["data"]
    assert back["blocked"] is False  # who blocked you is not shown
    assert_error(await http.get("/api/users/nobody-here", headers=viewer.auth), 404, 2006,
                 "user_not_found")


async def test_deleted_users_show_as_deleted_and_are_found_by_id_only(
    server: Stack, http: httpx.AsyncClient
) -> None:
    word = tag()
    viewer = await register(http)
    gone = await register(http, name=f"gone{word}", email=f"{unique_id()}@example.com")
    await soft_delete(server, gone.user_id)
    assert (await search(http, viewer, q=word))["items"] == []
    [item] = (await search(http, viewer, q=gone.user_id))["items"]
    assert (item["id"], item["name"], item["deleted"]) == (gone.user_id, "Deleted user", True)
    assert f"gone{word}" not in str(item)
    data = (await http.get(f"/api/users/{gone.user_id}", headers=viewer.auth)).json()["data"]
    assert (data["name"], data["deleted"], data["is_friend"]) == ("Deleted user", True, False)
