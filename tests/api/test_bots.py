"""Bot accounts over real HTTP and MQTT on both stacks (docs/bots.md): creating and listing,
the API token on every route and traded for a login session, `is_bot` wherever a user is shown,
revoking and rotating (401 afterwards, the bot's MQTT connection kicked), who may manage a bot
(1005 to others, admins may), passwords that never work, the per-owner limit, hostile tokens
and bodies, and a bot's sends held to the same ACLs as anyone's (3003)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api.test_accounts import assert_error
from tests.api.test_admin import make_admin
from tests.api.test_friends import of_type, user_topic
from tests.e2e.test_kick import kicked_then_closed
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
)
from tests.stacks import Stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make_bot(http: httpx.AsyncClient, owner: Account, **body: Any) -> tuple[str, str]:
    """A new bot of `owner`: its id and token."""
    body.setdefault("name", "helper bot")
    body.setdefault("user_id", unique_id("bot"))
    response = await http.post("/api/bots", headers=owner.auth, json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["bot"]["is_bot"] is True
    assert data["token"].startswith("mqb_")
    assert len(data["token"]) == 44
    return str(data["bot"]["id"]), str(data["token"])


async def bot_sign_in(http: httpx.AsyncClient, bot_id: str, token: str) -> Account:
    """The bot's login session, from its token (what the bot program does first)."""
    response = await http.post("/api/auth/bot", json={"token": token})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["user"]["id"] == bot_id
    assert data["user"]["is_bot"] is True
    assert data["mqtt"]["username"] == bot_id
    return Account(bot_id, data["token"], data["refresh_token"], data["mqtt"])


async def test_create_list_and_use_a_bot(http: httpx.AsyncClient) -> None:
    owner, alice = await register(http), await register(http)
    bot_id, token = await make_bot(http, owner, name="Echo")
    listed = (await http.get("/api/bots", headers=owner.auth)).json()["data"]
    assert [b["bot"]["id"] for b in listed] == [bot_id]
    [entry] = listed
    assert entry["owner_id"] == owner.user_id
    assert entry["bot"]["name"] == "Echo"
    [shown] = entry["tokens"]
    assert shown["prefix"] == token[:8]
    assert shown["revoked_at"] is None
    assert shown["last_used_at"] is None
    assert token not in json.dumps(listed)  # the token itself is shown once only
    assert (await http.get("/api/bots", headers=alice.auth)).json()["data"] == []

    # The token works on any route, as the bot.
    me = await http.get("/api/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert (me.json()["data"]["id"], me.json()["data"]["is_bot"]) == (bot_id, True)
    human = (await http.get("/api/me", headers=owner.auth)).json()["data"]
    assert human["is_bot"] is False
    [shown] = (await http.get("/api/bots", headers=owner.auth)).json()["data"][0]["tokens"]
    assert shown["last_used_at"] is not None

    # A group with the bot: is_bot in the member list, the thread, profiles and search.
    thread_id = await create_group(http, alice, await _as_account(bot_id, token))
    members = (await http.get(f"/api/threads/{thread_id}/members",
                              headers=alice.auth)).json()["data"]
    assert {m["user_id"]: m["is_bot"] for m in members} == {alice.user_id: False, bot_id: True}
    info = (await http.get(f"/api/threads/{thread_id}", headers=bearer(token))).json()["data"]
    assert {p["user_id"]: p["is_bot"] for p in info["participants"]} == {
        alice.user_id: False, bot_id: True}
    profile = (await http.get(f"/api/users/{bot_id}", headers=alice.auth)).json()["data"]
    assert (profile["id"], profile["is_bot"]) == (bot_id, True)
    found = (await http.get("/api/users", headers=alice.auth,
                            params={"q": bot_id})).json()["data"]["items"]
    assert [(u["id"], u["is_bot"]) for u in found] == [(bot_id, True)]
    assert (await http.get(f"/api/users/{owner.user_id}", headers=alice.auth)
            ).json()["data"]["is_bot"] is False

    # The bot sends and reads over HTTP like anyone.
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=bearer(token),
                           json={"client_msg_id": unique_id("c"), "body": "beep"})
    assert sent.status_code in (200, 201), sent.text
    history = (await http.get(f"/api/threads/{thread_id}/messages",
                              headers=alice.auth)).json()["data"]
    assert [(e["sender_id"], e["body"]) for e in history if e["type"] == "message"] == [
        (bot_id, "beep")]


async def test_is_bot_in_friends_requests_groups_blocks_and_user_updated(
        server: Stack, http: httpx.AsyncClient) -> None:
    alice = await register(http)
    bot_id, token = await make_bot(http, await register(http))
    bot = await _as_account(bot_id, token)
    async with mqtt_session(server.settings, alice) as client:
        await client.subscribe(user_topic(server, alice), qos=1)
        sent = await http.post("/api/friends/requests", headers=bot.auth,
                               json={"user_id": alice.user_id})
        assert sent.status_code == 201, sent.text
        assert (sent.json()["data"]["from"]["is_bot"], sent.json()["data"]["to"]["is_bot"]) == (
            True, False)
        event = await next_event(client, of_type("friend_request"))
        assert (event["from"]["id"], event["from"]["is_bot"]) == (bot_id, True)
        [incoming] = (await http.get("/api/friends/requests", headers=alice.auth)).json()["data"]
        assert incoming["from"]["is_bot"] is True
        accepted = await http.post(f"/api/friends/requests/{incoming['id']}/accept",
                                   headers=alice.auth)
        assert accepted.json()["data"]["from"]["is_bot"] is True
        [friend] = (await http.get("/api/friends", headers=alice.auth)).json()["data"]
        assert (friend["user"]["id"], friend["user"]["is_bot"]) == (bot_id, True)
        one = (await http.get(f"/api/friends/{bot_id}", headers=alice.auth)).json()["data"]
        assert one["user"]["is_bot"] is True

        group = (await http.post("/api/friends/groups", headers=alice.auth,
                                 json={"name": "bots"})).json()["data"]
        _ = await http.post(f"/api/friends/groups/{group['id']}/members", headers=alice.auth,
                            json={"user_ids": [bot_id]})
        detail = (await http.get(f"/api/friends/groups/{group['id']}",
                                 headers=alice.auth)).json()["data"]
        assert [(m["id"], m["is_bot"]) for m in detail["members"]] == [(bot_id, True)]

        renamed = await http.patch("/api/me", headers=bot.auth, json={"name": "Renamed bot"})
        assert renamed.json()["data"]["is_bot"] is True
        updated = await next_event(client, of_type("user_updated"))
        assert (updated["user"]["id"], updated["user"]["is_bot"]) == (bot_id, True)

    blocked = await http.post("/api/blocks", headers=alice.auth, json={"user_id": bot_id})
    assert blocked.json()["data"]["user"]["is_bot"] is True
    [listed] = (await http.get("/api/blocks", headers=alice.auth)).json()["data"]
    assert listed["user"]["is_bot"] is True


async def _as_account(bot_id: str, token: str) -> Account:
    return Account(bot_id, token, "", {})


async def test_passwords_never_sign_a_bot_in(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    bot_id, token = await make_bot(http, owner)
    for password in ("pass-word-1", token, ""):
        assert_error(await http.post("/api/auth/login", json={
            "login": bot_id, "password": password}), 401, 2005, "login_failed")
    # Nor can the bot set one: changing a password needs the current one.
    changed = await http.patch("/api/me", headers=bearer(token),
                               json={"password": "new-pass-1", "current_password": "x"})
    assert changed.status_code >= 400
    assert_error(await http.post("/api/auth/login", json={
        "login": bot_id, "password": "new-pass-1"}), 401, 2005, "login_failed")


async def test_hostile_tokens_and_bodies(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    bot_id, token = await make_bot(http, owner)
    for bad in ("mqb_", "mqb_" + "A" * 40, token + "x", token[:-1], "mqb_" + "x" * 5000,
                token.upper(), token[4:]):
        assert_error(await http.post("/api/auth/bot", json={"token": bad}),
                     401, 2001, "token_invalid")
        assert_error(await http.get("/api/me", headers=bearer(bad)), 401, 2001, "token_invalid")
    for bad, status, code, name in (("mqb_\x00" + token[5:], 401, 2001, "token_invalid"),
                                    ("", 401, 2001, "token_invalid"),
                                    ("mqb_\ud800", 400, 1001, "invalid_parameter")):
        assert_error(await http.post("/api/auth/bot", content=json.dumps({"token": bad}),
                                     headers={"Content-Type": "application/json"}),
                     status, code, name)
    bodies: list[Any] = [{}, {"token": 5}, {"token": None}, [token]]
    for body in bodies:
        assert_error(await http.post("/api/auth/bot", json=body), 400, 1001,
                     "invalid_parameter")
    # Creating: names and ids follow the rules of registering; a taken id is 2007.
    bodies = [{}, {"name": ""}, {"name": "x" * 21}, {"name": "ok", "user_id": "mqim-x"},
              {"name": "ok", "user_id": "a b"}, {"name": "ok", "user_id": "me"},
              {"name": "ok", "user_id": 7}, {"name": "a\x00b"}]
    for body in bodies:
        assert_error(await http.post("/api/bots", headers=owner.auth, json=body), 400, 1001,
                     "invalid_parameter")
    for taken in (bot_id, owner.user_id):
        assert_error(await http.post("/api/bots", headers=owner.auth,
                                     json={"name": "x", "user_id": taken}), 409, 2007,
                     "user_exists")
    # Without signing in: 401.
    assert_error(await http.post("/api/bots", json={"name": "x"}), 401, 2001, "token_invalid")
    # A bot makes no bots.
    assert_error(await http.post("/api/bots", headers=bearer(token), json={"name": "x"}),
                 403, 1004, "forbidden")
    # Without a user_id, the bot gets a new id.
    made = await http.post("/api/bots", headers=owner.auth, json={"name": "anon"})
    assert made.status_code == 201, made.text
    assert made.json()["data"]["bot"]["id"]


async def test_at_most_twenty_bots_per_owner(http: httpx.AsyncClient) -> None:
    owner = await register(http)
    first, _ = await make_bot(http, owner)
    for _ in range(19):
        await make_bot(http, owner)
    assert_error(await http.post("/api/bots", headers=owner.auth, json={"name": "21st"}),
                 400, 1001, "invalid_parameter")
    # A deleted bot frees its place.
    assert (await http.delete(f"/api/bots/{first}", headers=owner.auth)).is_success
    await make_bot(http, owner)
    assert len((await http.get("/api/bots", headers=owner.auth)).json()["data"]) == 20


async def test_only_the_owner_or_an_admin_manages_a_bot(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, mallory = await register(http), await register(http)
    bot_id, token = await make_bot(http, owner)
    for method, path in (("POST", f"/api/bots/{bot_id}/token"),
                         ("DELETE", f"/api/bots/{bot_id}/token"),
                         ("DELETE", f"/api/bots/{bot_id}"),
                         ("POST", f"/api/bots/{owner.user_id}/token"),  # not a bot
                         ("DELETE", "/api/bots/nobody-here")):
        for who in (mallory.auth, bearer(token)):  # the bot itself manages nothing either
            assert_error(await http.request(method, path, headers=who), 404, 1005, "not_found")
    assert (await http.get("/api/me", headers=bearer(token))).is_success  # untouched
    admin = await make_admin(server, http)
    rotated = await http.post(f"/api/bots/{bot_id}/token", headers=admin.auth)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["data"]["revoked"] == 1
    assert_error(await http.get("/api/me", headers=bearer(token)), 401, 2001, "token_invalid")
    assert (await http.get("/api/me", headers=bearer(rotated.json()["data"]["token"]))
            ).is_success


async def test_revoking_ends_the_token_and_kicks_the_bot(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    bot_id, token = await make_bot(http, owner)
    bot = await bot_sign_in(http, bot_id, token)
    sessions = (await http.get("/api/me/sessions", headers=bot.auth)).json()["data"]
    assert [s["platform"] for s in sessions] == ["bot"]
    async with mqtt_session(server.settings, bot) as client:
        await client.subscribe(f"{server.settings.topic_prefix}/u/{bot_id}", qos=1)
        revoked = await http.delete(f"/api/bots/{bot_id}/token", headers=owner.auth)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["data"] == {"bot_id": bot_id, "revoked": 1, "sessions_ended": 1}
        kicked = await kicked_then_closed(client)
    assert kicked is not None
    assert (kicked["session_id"], kicked["reason"]) == (sessions[0]["id"], "token_revoked")
    assert_error(await http.get("/api/me", headers=bearer(token)), 401, 2001, "token_invalid")
    assert_error(await http.get("/api/me", headers=bot.auth), 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/bot", json={"token": token}), 401, 2001,
                 "token_invalid")
    assert_error(await http.post("/api/auth/refresh", json={"refresh_token": bot.refresh_token}),
                 401, 2001, "token_invalid")
    [shown] = (await http.get("/api/bots", headers=owner.auth)).json()["data"][0]["tokens"]
    assert shown["revoked_at"] is not None
    # Revoking again revokes nothing more.
    again = await http.delete(f"/api/bots/{bot_id}/token", headers=owner.auth)
    assert again.json()["data"] == {"bot_id": bot_id, "revoked": 0, "sessions_ended": 0}


async def test_rotating_gives_a_new_token_and_kicks_the_old_session(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner = await register(http)
    bot_id, old = await make_bot(http, owner)
    bot = await bot_sign_in(http, bot_id, old)
    async with mqtt_session(server.settings, bot) as client:
        await client.subscribe(f"{server.settings.topic_prefix}/u/{bot_id}", qos=1)
        rotated = await http.post(f"/api/bots/{bot_id}/token", headers=owner.auth)
        assert rotated.status_code == 200, rotated.text
        kicked = await kicked_then_closed(client)
    assert kicked is not None
    assert kicked["reason"] == "token_revoked"
    new = rotated.json()["data"]
    assert (new["bot_id"], new["revoked"], new["prefix"]) == (bot_id, 1, new["token"][:8])
    assert_error(await http.get("/api/me", headers=bearer(old)), 401, 2001, "token_invalid")
    fresh = await bot_sign_in(http, bot_id, new["token"])
    async with mqtt_session(server.settings, fresh):
        pass  # the new session connects
    tokens = (await http.get("/api/bots", headers=owner.auth)).json()["data"][0]["tokens"]
    assert [(t["prefix"], t["revoked_at"] is None) for t in tokens] == [
        (new["prefix"], True), (old[:8], False)]


async def test_deleting_a_bot_deletes_its_account(http: httpx.AsyncClient) -> None:
    owner, alice = await register(http), await register(http)
    bot_id, token = await make_bot(http, owner)
    deleted = await http.delete(f"/api/bots/{bot_id}", headers=owner.auth)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["id"] == bot_id
    assert_error(await http.get("/api/me", headers=bearer(token)), 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/bot", json={"token": token}), 401, 2001,
                 "token_invalid")
    assert (await http.get("/api/bots", headers=owner.auth)).json()["data"] == []
    assert_error(await http.delete(f"/api/bots/{bot_id}", headers=owner.auth), 404, 1005,
                 "not_found")
    profile = (await http.get(f"/api/users/{bot_id}", headers=alice.auth))
    assert profile.status_code in (200, 404)


async def test_a_banned_bot_is_refused(server: Stack, http: httpx.AsyncClient) -> None:
    owner, admin = await register(http), await make_admin(server, http)
    bot_id, token = await make_bot(http, owner)
    banned = await http.post(f"/api/admin/users/{bot_id}/ban", headers=admin.auth)
    assert banned.status_code == 200, banned.text
    assert_error(await http.get("/api/me", headers=bearer(token)), 403, 2009, "account_banned")
    assert_error(await http.post("/api/auth/bot", json={"token": token}), 403, 2009,
                 "account_banned")


async def test_a_bot_sends_only_where_it_is_a_member(
    server: Stack, http: httpx.AsyncClient
) -> None:
    owner, alice = await register(http), await register(http)
    bot_id, token = await make_bot(http, owner)
    elsewhere = await create_group(http, alice, owner)
    bot = await bot_sign_in(http, bot_id, token)
    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bot) as client:
        await client.subscribe(f"{prefix}/u/{bot_id}", qos=1)
        await client.publish(f"{prefix}/up/{bot_id}",
                             send_command(elsewhere, unique_id("c"), "hi", req="r1"), qos=1)
        error = await next_event(client, lambda t, e: e.get("req") == "r1")
    assert (error["type"], error["code"], error["error"]) == ("error", 3003, "not_a_member")
    assert_error(await http.post(f"/api/threads/{elsewhere}/messages", headers=bearer(token),
                                 json={"client_msg_id": unique_id("c"), "body": "hi"}),
                 403, 3003, "not_a_member")
    assert_error(await http.get(f"/api/threads/{elsewhere}/messages", headers=bearer(token)),
                 403, 3003, "not_a_member")
