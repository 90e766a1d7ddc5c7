"""Bad data over real HTTP, against both stacks: control characters and lone surrogates in what
users name, write or look up; an id that only looks valid (`alice\\n`); a NUL and LIKE wildcards
in the search query; a user who registers the topic prefix as their id; and how long a login
takes when the account does not exist.

Each refusal is a 4xx in the error envelope, and each test then shows that nothing was stored.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_accounts import assert_error
from tests.api.test_admin import make_admin
from tests.helpers import Account, granted, mqtt_session, register, unique_id
from tests.stacks import Stack, running_stack

PASSWORD = "pass-word-1"
# NUL, a line break, an ANSI escape, DEL, a C1 control (NEL) and half a surrogate pair.
BAD = ["nul\x00x", "two\nlines", "esc\x1b[31m", "del\x7fx", "nel\x85x", "half\ud800x"]
BAD_IDS = ["nul", "newline", "escape", "del", "c1", "surrogate"]


async def send(http: httpx.AsyncClient, method: str, path: str, body: Any,
               account: Account | None = None) -> httpx.Response:
    """A JSON request encoded here with `\\uXXXX` escapes, so a lone surrogate goes out as JSON
    allows (it cannot be UTF-8)."""
    headers = {"Content-Type": "application/json", **(account.auth if account else {})}
    return await http.request(method, path, content=json.dumps(body).encode(), headers=headers)


def assert_invalid(response: httpx.Response) -> None:
    assert_error(response, 400, 1001, "invalid_parameter")


async def find(http: httpx.AsyncClient, viewer: Account, q: str) -> list[dict[str, Any]]:
    response = await http.get("/api/users", params={"q": q, "page_size": 100},
                              headers=viewer.auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


# --- registration --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD, ids=BAD_IDS)
async def test_register_refuses_control_characters_in_the_name(
    http: httpx.AsyncClient, bad: str
) -> None:
    user_id = unique_id()
    assert_invalid(await send(http, "POST", "/api/auth/register",
                              {"user_id": user_id, "name": bad, "password": PASSWORD}))
    # Nothing was stored: the id is still free.
    await register(http, user_id)


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", "\t", "\x0b", "\x1f"],
                         ids=["newline", "crlf", "nul", "tab", "vtab", "unit-separator"])
async def test_register_refuses_ids_that_only_look_valid(
    http: httpx.AsyncClient, suffix: str
) -> None:
    viewer, user_id = await register(http), unique_id()
    for bad in (user_id + suffix, suffix + user_id, user_id[:4] + suffix + user_id[4:]):
        assert_invalid(await send(http, "POST", "/api/auth/register",
                                  {"user_id": bad, "name": user_id, "password": PASSWORD}))
    assert await find(http, viewer, user_id) == []
    await register(http, user_id)
    assert [u["id"] for u in await find(http, viewer, user_id)] == [user_id]


@pytest.mark.parametrize("field", ["email", "phone"])
@pytest.mark.parametrize("bad", BAD, ids=BAD_IDS)
async def test_register_refuses_control_characters_in_emails_and_phones(
    http: httpx.AsyncClient, field: str, bad: str
) -> None:
    user_id = unique_id()
    value = (f"{user_id}.{bad}@example.com" if field == "email"
             else f"+1555{uuid.uuid4().int % 10**6:06d}{bad}")
    assert_invalid(await send(http, "POST", "/api/auth/register", {
        "user_id": user_id, "name": "n", "password": PASSWORD, field: value}))
    await register(http, user_id)


async def test_a_lone_surrogate_in_a_password_is_refused(http: httpx.AsyncClient) -> None:
    user_id = unique_id()
    assert_invalid(await send(http, "POST", "/api/auth/register", {
        "user_id": user_id, "name": "n", "password": "pass-word-\ud800"}))
    await register(http, user_id)


# --- the profile ---------------------------------------------------------------------------


async def test_profile_refuses_control_characters(http: httpx.AsyncClient) -> None:
    me = await register(http)
    before = (await http.get("/api/me", headers=me.auth)).json()["data"]
    changes: list[dict[str, Any]] = [
        *({"name": bad} for bad in BAD),
        *({"bio": bad} for bad in BAD if "\n" not in bad),
        {"avatar_url": "https://cdn.example.com/a\x00.png"},
        {"avatar_url": "https://cdn.example.com/a\x7f.png"},
        {"extra": {"k": "nul\x00"}}, {"extra": {"nul\x00": 1}}, {"extra": {"k": ["\ud800"]}},
        {"email": f"{me.user_id}\x00@example.com"},
    ]
    for change in changes:
        assert_invalid(await send(http, "PATCH", "/api/me", change, me))
    assert (await http.get("/api/me", headers=me.auth)).json()["data"] == before
    # Line breaks and tabs are fine in a bio, and so is other text in `extra`.
    changed = await send(http, "PATCH", "/api/me",
                         {"bio": "line one\nline two\twith a tab", "extra": {"k": "\x1b"}}, me)
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["bio"] == "line one\nline two\twith a tab"


# --- friends -------------------------------------------------------------------------------


async def test_friend_requests_refuse_control_characters(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    for bad in BAD:
        if "\n" in bad:
            continue  # a message may have line breaks
        assert_invalid(await send(http, "POST", "/api/friends/requests",
                                  {"user_id": bob.user_id, "message": bad}, alice))
    for bad in BAD:
        assert_invalid(await send(http, "POST", "/api/friends/requests",
                                  {"user_id": bob.user_id + bad}, alice))
        assert_invalid(await send(http, "POST", "/api/blocks", {"user_id": bob.user_id + bad},
                                  alice))
    incoming = await http.get("/api/friends/requests", headers=bob.auth)
    assert incoming.json()["data"] == []
    assert (await http.get("/api/blocks", headers=alice.auth)).json()["data"] == []
    sent = await send(http, "POST", "/api/friends/requests",
                      {"user_id": bob.user_id, "message": "hi,\nit's alice"}, alice)
    assert sent.status_code == 201, sent.text


async def test_friend_groups_refuse_control_characters(http: httpx.AsyncClient) -> None:
    me = await register(http)
    for bad in BAD:
        assert_invalid(await send(http, "POST", "/api/friends/groups", {"name": bad}, me))
    assert (await http.get("/api/friends/groups", headers=me.auth)).json()["data"] == []
    created = await send(http, "POST", "/api/friends/groups", {"name": "work"}, me)
    assert created.status_code == 201, created.text
    group = created.json()["data"]["id"]
    for bad in BAD:
        assert_invalid(await send(http, "PATCH", f"/api/friends/groups/{group}", {"name": bad},
                                  me))
        assert_invalid(await send(http, "POST", f"/api/friends/groups/{group}/members",
                                  {"user_ids": [f"{me.user_id}{bad}"]}, me))
    shown = (await http.get(f"/api/friends/groups/{group}", headers=me.auth)).json()["data"]
    assert (shown["name"], shown["members"]) == ("work", [])


# --- search and lookups --------------------------------------------------------------------


# (A query string is UTF-8 bytes: a lone surrogate cannot arrive in one.)
@pytest.mark.parametrize("bad", [*BAD[:-1], "\x00", " \x00 "],
                         ids=[*BAD_IDS[:-1], "only-nul", "padded"])
async def test_search_refuses_control_characters(http: httpx.AsyncClient, bad: str) -> None:
    viewer = await register(http)
    await register(http)  # so that "every user" would not be empty
    response = await http.get("/api/users", params={"q": bad}, headers=viewer.auth)
    assert_invalid(response)


async def test_search_takes_like_wildcards_literally(http: httpx.AsyncClient) -> None:
    viewer, tag = await register(http), uuid.uuid4().hex[:6]
    for name in (f"{tag}%a", f"{tag}_b", f"{tag}\\c", f"{tag}xx"):
        await register(http, name=name)
    for q, expected in ((f"{tag}%", f"{tag}%a"), (f"{tag}_", f"{tag}_b"),
                        (f"{tag}\\", f"{tag}\\c")):
        assert [u["name"] for u in await find(http, viewer, q)] == [expected], q
    for wildcard in ("%", "_", "\\"):
        assert all(wildcard in u["name"] for u in await find(http, viewer, wildcard)), wildcard


async def test_logins_and_tokens_with_control_characters_fail_like_wrong_ones(
    http: httpx.AsyncClient
) -> None:
    me = await register(http)
    for bad in BAD[:-1]:  # (a lone surrogate is refused with the body: 400)
        for login in (me.user_id + bad, bad):
            response = await send(http, "POST", "/api/auth/login",
                                  {"login": login, "password": PASSWORD})
            assert_error(response, 401, 2005, "login_failed")
        response = await send(http, "POST", "/api/auth/refresh",
                              {"refresh_token": f"x{bad}.{me.refresh_token}"})
        assert_error(response, 401, 2001, "token_invalid")
    # Over bcrypt's 72 bytes: a wrong password, not a server error.
    response = await send(http, "POST", "/api/auth/login",
                          {"login": me.user_id, "password": PASSWORD + "x" * 80})
    assert_error(response, 401, 2005, "login_failed")


# --- the topic prefix as a user id ---------------------------------------------------------


async def test_a_user_named_like_the_topic_prefix_gets_nothing_of_the_tree_from_a_rule(
    server: Stack, http: httpx.AsyncClient
) -> None:
    prefix = server.settings.topic_prefix
    admin, bob, carol = await make_admin(server, http), await register(http), await register(http)
    intruder = await register(http, prefix)
    thread = await send(http, "POST", "/api/threads",
                        {"type": "group", "name": "g", "user_ids": [carol.user_id]}, bob)
    assert thread.status_code == 201, thread.text
    thread_id = thread.json()["data"]["thread_id"]
    rule = await send(http, "POST", "/api/admin/acl/rules",
                      {"topic": "%u/#", "access": "readwrite"}, admin)
    assert rule.status_code == 201, rule.text
    try:
        async with mqtt_session(server.settings, intruder) as client:
            for topic in (f"{prefix}/#", f"{prefix}/t/+", f"{prefix}/t/{thread_id}",
                          f"{prefix}/+/{bob.user_id}"):
                assert granted(await client.subscribe(topic, qos=1)) == [0x80], topic
        async with mqtt_session(server.settings, bob) as client:
            assert granted(await client.subscribe(f"{bob.user_id}/#", qos=1)) == [1]
    finally:
        rule_id = rule.json()["data"]["id"]
        deleted = await http.delete(f"/api/admin/acl/rules/{rule_id}", headers=admin.auth)
        assert deleted.is_success, deleted.text


# --- login timing --------------------------------------------------------------------------


async def test_login_of_an_unknown_account_takes_as_long_as_a_wrong_password(
    tmp_path: Path,
) -> None:
    # The default test cost (4 rounds, about 1 ms) is too cheap to tell apart from a query.
    async with running_stack("embedded", tmp_path, bcrypt_rounds=10) as stack, httpx.AsyncClient(
        base_url=f"http://{stack.settings.http}", timeout=30
    ) as http:
        known, deleted, banned = await register(http), await register(http), await register(http)
        assert (await http.delete("/api/me", headers=deleted.auth)).status_code == 200
        admin = await make_admin(stack, http)
        ban = await http.post(f"/api/admin/users/{banned.user_id}/ban", headers=admin.auth)
        assert ban.status_code == 200, ban.text

        async def seconds(login: str) -> float:
            start = time.perf_counter()
            response = await http.post("/api/auth/login",
                                       json={"login": login, "password": "wrong-pass-1"})
            elapsed = time.perf_counter() - start
            assert_error(response, 401, 2005, "login_failed")
            return elapsed

        series: dict[str, list[float]] = {
            "known": [], "unknown id": [], "unknown email": [], "deleted": [], "banned": []}
        await seconds(unique_id())  # the first unknown login makes the stand-in hash
        for _ in range(5):  # interleaved, so a busy moment slows every kind alike
            series["known"].append(await seconds(known.user_id))
            series["unknown id"].append(await seconds(unique_id()))
            series["unknown email"].append(await seconds(f"{unique_id()}@example.com"))
            series["deleted"].append(await seconds(deleted.user_id))
            series["banned"].append(await seconds(banned.user_id))
        median = {kind: statistics.median(times) for kind, times in series.items()}
        assert all(value >= median["known"] / 2 for value in median.values()), median


async def test_thread_names_refuse_control_characters(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    for name in ("a\0b", "line\nbreak", "bell\x07"):
        created = await http.post("/api/threads", headers=owner.auth,
                                  json={"type": "group", "name": name})
        assert created.status_code == 400, created.text
        assert created.json()["code"] == 1001
    threads = await http.get("/api/threads", headers=owner.auth)
    assert threads.json()["data"] == []
