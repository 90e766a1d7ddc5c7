"""The caller's own account over real HTTP (and MQTT for `user_updated`): the profile and its
rules, the live sessions and remote sign-out, deleting the account and restoring it within the
restore window, and after it (a stack whose window is 0 days) the purge by `mqim users purge`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.test_accounts import assert_error
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack, running_stack


async def login(http: httpx.AsyncClient, account: Account, platform: str = "web",
                password: str | None = None) -> httpx.Response:
    return await http.post("/api/auth/login", json={
        "login": account.user_id, "password": password or account.password,
        "platform": platform})


def bearer(response: httpx.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['data']['token']}"}


# Profile


async def test_profile_change_is_returned_and_reaches_the_other_devices(
    server: Stack, http: httpx.AsyncClient
) -> None:
    account = await register(http, platform="ios")
    other = await login(http, account, "android")
    prefix = server.settings.topic_prefix
    change = {"name": "  Alice A.  ", "avatar_url": "https://cdn.example.com/a.png",
              "bio": "个人简介 " * 10, "extra": {"theme": "dark", "langs": ["en", "zh"]}}
    async with mqtt_session(server.settings, account) as device:
        await device.subscribe(f"{prefix}/u/{account.user_id}", qos=1)
        response = await http.patch("/api/me", headers=bearer(other), json=change)
        assert response.status_code == 200, response.text
        event = await next_event(device, lambda t, e: e.get("type") == "user_updated")
    data = response.json()["data"]
    assert (data["name"], data["avatar_url"], data["bio"], data["extra"]) == (
        "Alice A.", change["avatar_url"], change["bio"], change["extra"])
    assert event == {"type": "user_updated", "user": data}
    assert (await http.get("/api/me", headers=account.auth)).json()["data"] == data
    # null clears what may be cleared; an absent field stays.
    cleared = await http.patch("/api/me", headers=account.auth,
                               json={"avatar_url": None, "bio": None, "extra": None})
    assert cleared.json()["data"] == {**data, "avatar_url": None, "bio": None, "extra": None}


@pytest.mark.parametrize(
    "change",
    [{"name": "n" * 21},  # seed: "Name too long"
     {"name": ""}, {"name": "   "}, {"name": None}, {"name": 7},
     {"avatar_url": "ftp://example.com/a.png"}, {"avatar_url": "javascript:alert(1)"},
     {"avatar_url": "https://example.com/" + "a" * 1010}, {"avatar_url": "https:// x"},
     {"bio": "b" * 501}, {"extra": ["not", "an", "object"]}, {"extra": "{}"},
     {"extra": {"blob": "x" * 4096}},
     {"email": "not-an-email"},  # seed: "Invalid email"
     {"password": "short1", "current_password": "pass-word-1"},  # seed: "Invalid password"
     {"password": "onlyletters", "current_password": "pass-word-1"},
     {"password": None, "current_password": "pass-word-1"}],
)
async def test_bad_profile_changes_are_refused(
    http: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    account = await register(http)
    before = (await http.get("/api/me", headers=account.auth)).json()["data"]
    assert_error(await http.patch("/api/me", headers=account.auth, json=change),
                 400, 1001, "invalid_parameter")
    assert (await http.get("/api/me", headers=account.auth)).json()["data"] == before


async def test_extra_up_to_4_kib_is_accepted(http: httpx.AsyncClient) -> None:
    account = await register(http)
    extra = {"blob": "x" * (4096 - len('{"blob":""}'))}
    response = await http.patch("/api/me", headers=account.auth, json={"extra": extra})
    assert response.json()["data"]["extra"] == extra


async def test_password_change_needs_the_current_one_and_ends_the_other_sessions(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http, platform="ios")
    other = await login(http, account, "android")
    change = {"password": "new-pass-2"}
    assert_error(await http.patch("/api/me", headers=account.auth, json=change),
                 400, 1001, "invalid_parameter")
    assert_error(await http.patch("/api/me", headers=account.auth, json={
        **change, "current_password": "wrong-pass-1"}), 401, 2005, "login_failed")
    assert (await http.get("/api/me", headers=bearer(other))).is_success  # nothing changed yet
    changed = await http.patch("/api/me", headers=account.auth, json={
        **change, "current_password": account.password})
    assert changed.status_code == 200, changed.text
    assert "password" not in str(changed.json()["data"])
    assert (await http.get("/api/me", headers=account.auth)).is_success  # this one stays
    assert_error(await http.get("/api/me", headers=bearer(other)), 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/refresh", json={
        "refresh_token": other.json()["data"]["refresh_token"]}), 401, 2001, "token_invalid")
    assert_error(await login(http, account), 401, 2005, "login_failed")
    assert (await login(http, account, password="new-pass-2")).status_code == 200


async def test_email_change_needs_the_password_and_a_free_address(
    http: httpx.AsyncClient,
) -> None:
    taken = f"{unique_id('e')}@example.com"
    await register(http, email=taken)
    account = await register(http)
    email = f"{unique_id('e')}@example.com"
    assert_error(await http.patch("/api/me", headers=account.auth, json={"email": email}),
                 400, 1001, "invalid_parameter")
    assert_error(await http.patch("/api/me", headers=account.auth, json={
        "email": email, "current_password": "wrong-pass-1"}), 401, 2005, "login_failed")
    assert_error(await http.patch("/api/me", headers=account.auth, json={
        "email": taken.upper(), "current_password": account.password}), 409, 2007, "user_exists")
    changed = await http.patch("/api/me", headers=account.auth, json={
        "email": email.upper(), "current_password": account.password})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["email"] == email
    assert changed.json()["data"]["email_verified_at"] is None  # no code given
    by_email = await http.post("/api/auth/login", json={
        "login": email, "password": account.password, "platform": "web"})
    assert by_email.json()["data"]["user"]["id"] == account.user_id
    # (That login replaced the web session.) The same email again changes nothing and needs
    # no password.
    same = await http.patch("/api/me", headers=bearer(by_email), json={"email": email})
    assert same.status_code == 200


async def test_profile_needs_a_live_token(http: httpx.AsyncClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        assert_error(await http.request(method, "/api/me", json={}), 401, 2001, "token_invalid")
    assert_error(await http.get("/api/me/sessions"), 401, 2001, "token_invalid")
    assert_error(await http.delete("/api/me/sessions/x"), 401, 2001, "token_invalid")


# Sessions


async def test_sessions_are_listed_and_one_can_be_signed_out_remotely(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http, platform="ios")
    android = await login(http, account, "android")
    listed = await http.get("/api/me/sessions", headers=account.auth)
    sessions = listed.json()["data"]
    assert [(s["platform"], s["current"]) for s in sessions] == [("ios", True),
                                                                 ("android", False)]
    assert set(sessions[0]) == {"id", "platform", "created_at", "refreshed_at", "expires_at",
                                "current"}
    android_id = android.json()["data"]["session_id"]
    assert sessions[1]["id"] == android_id
    ended = await http.delete(f"/api/me/sessions/{android_id}", headers=account.auth)
    assert ended.json()["data"] == {"id": android_id, "ended": True}
    assert_error(await http.get("/api/me", headers=bearer(android)), 401, 2001, "token_invalid")
    assert [s["platform"] for s in (await http.get(
        "/api/me/sessions", headers=account.auth)).json()["data"]] == ["ios"]
    assert_error(await http.delete(f"/api/me/sessions/{android_id}", headers=account.auth),
                 404, 1005, "not_found")


async def test_someone_elses_session_is_not_found(http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    bob_session = (await login(http, bob, "macos")).json()["data"]["session_id"]
    assert_error(await http.delete(f"/api/me/sessions/{bob_session}", headers=alice.auth),
                 404, 1005, "not_found")
    assert_error(await http.delete("/api/me/sessions/no-such-session", headers=alice.auth),
                 404, 1005, "not_found")
    assert (await http.get("/api/me/sessions", headers={
        "Authorization": f"Bearer {(await login(http, bob, 'macos')).json()['data']['token']}"}
    )).is_success


# Delete and restore within the window (the default 30 days)


async def delete_me(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await http.delete("/api/me", headers=account.auth)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_deleted_account_is_restored_by_logging_in(http: httpx.AsyncClient) -> None:
    account = await register(http, platform="ios")
    other = await login(http, account, "android")
    await http.patch("/api/me", headers=account.auth, json={"bio": "still here"})
    deleted = await delete_me(http, account)
    assert deleted["id"] == account.user_id
    assert deleted["deleted"] is True
    assert deleted["restore_until"] > "2"
    for headers in (account.auth, bearer(other)):  # every session ended
        assert_error(await http.get("/api/me", headers=headers), 401, 2001, "token_invalid")
    assert_error(await login(http, account, password="wrong-pass-1"), 401, 2005, "login_failed")
    restored = await login(http, account)
    assert restored.status_code == 200, restored.text
    assert restored.json()["data"]["restored"] is True
    me = (await http.get("/api/me", headers=bearer(restored))).json()["data"]
    assert (me["id"], me["bio"]) == (account.user_id, "still here")  # as it was
    again = await login(http, account)
    assert again.json()["data"]["restored"] is False


async def test_registering_again_with_the_password_restores_the_account(
    http: httpx.AsyncClient,
) -> None:
    email = f"{unique_id('e')}@example.com"
    account = await register(http, email=email)
    thread_id = await create_group(http, account)
    await delete_me(http, account)
    body = {"user_id": account.user_id, "name": "Someone else", "password": account.password}
    wrong = await http.post("/api/auth/register", json={**body, "password": "wrong-pass-1"})
    assert_error(wrong, 409, 2007, "user_exists")
    assert "deleted account" in wrong.json()["msg"]
    restored = await http.post("/api/auth/register", json={
        "email": email, "name": "Someone else", "password": account.password})
    assert restored.status_code == 200, restored.text  # seed: 200 "已恢复账户", with a token
    data = restored.json()["data"]
    assert data["restored"] is True
    assert (data["user"]["id"], data["user"]["name"]) == (account.user_id, account.user_id[:20])
    threads = await http.get("/api/threads", headers=bearer(restored))
    assert thread_id in [t["thread_id"] for t in threads.json()["data"]]


async def test_identifiers_of_two_accounts_never_restore(http: httpx.AsyncClient) -> None:
    alice = await register(http)
    bob_email = f"{unique_id('e')}@example.com"
    await register(http, email=bob_email)
    await delete_me(http, alice)
    assert_error(await http.post("/api/auth/register", json={
        "user_id": alice.user_id, "email": bob_email, "name": "x",
        "password": alice.password}), 409, 2007, "user_exists")


async def test_deleted_account_cannot_be_added_to_threads(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http)
    await delete_me(http, account)
    assert_error(await http.delete("/api/me", headers=account.auth), 401, 2001, "token_invalid")
    other = await register(http)
    assert_error(await http.post("/api/threads", headers=other.auth, json={
        "type": "group", "name": "g", "user_ids": [account.user_id]}), 404, 2006,
        "user_not_found")


# After the window: a stack whose restore window is 0 days


@pytest.fixture(scope="module", params=["embedded", "mosquitto"])
async def short_window(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with running_stack(request.param, tmp_path_factory.mktemp(f"window-{request.param}"),
                             restore_window_days=0) as stack:
        yield stack


@pytest.fixture
async def short_http(short_window: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{short_window.settings.http}",
                                 timeout=10) as client:
        yield client


async def test_after_the_window_login_fails_and_the_ids_wait_for_the_purge(
    short_window: Stack, short_http: httpx.AsyncClient
) -> None:
    http = short_http
    email = f"{unique_id('e')}@example.com"
    account = await register(http, email=email)
    friend = await register(http)
    thread_id = await create_group(http, friend, account)
    sent = await http.post(f"/api/threads/{thread_id}/messages", headers=account.auth,
                           json={"client_msg_id": "m1", "body": "before I go"})
    assert sent.status_code in (200, 201), sent.text
    await delete_me(http, account)
    # seed: "User deleted or not activated", once the password is right.
    assert_error(await login(http, account), 404, 2006, "user_not_found")
    assert_error(await login(http, account, password="wrong-pass-1"), 401, 2005, "login_failed")
    for field in ({"user_id": account.user_id}, {"email": email}):
        again = await http.post("/api/auth/register", json={
            **field, "name": "x", "password": account.password})
        assert_error(again, 409, 2007, "user_exists")
        assert "purged" in again.json()["msg"]

    dry = await short_window.cli("users", "purge", "--dry-run")
    assert account.user_id in dry
    assert re.search(r"would purge [1-9]\d* user", dry), dry
    assert_error(await login(http, account), 404, 2006, "user_not_found")  # nothing removed
    purged = await short_window.cli("users", "purge")
    assert re.search(r"purged [1-9]\d* user", purged), purged
    assert "purged 0 user" in await short_window.cli("users", "purge")

    assert_error(await login(http, account), 401, 2005, "login_failed")  # gone
    history = await http.get(f"/api/threads/{thread_id}/messages", headers=friend.auth)
    [message] = [e for e in history.json()["data"] if e["type"] == "message"]
    assert (message["body"], message["sender_id"]) == ("before I go", None)
    info = (await http.get(f"/api/threads/{thread_id}", headers=friend.auth)).json()["data"]
    assert account.user_id not in [p["user_id"] for p in info["participants"]]
    # The id and email are free again, for a new account.
    fresh = await http.post("/api/auth/register", json={
        "user_id": account.user_id, "email": email, "name": "new", "password": "other-pass-3"})
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["data"]["restored"] is False
    assert (await http.get(f"/api/threads/{thread_id}/messages", headers=bearer(fresh))
            ).status_code == 403
