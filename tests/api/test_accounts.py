"""Accounts and sessions over real HTTP: register, login by any identifier and platform,
refresh, logout. The caller's profile, sessions and deletion: test_me.py; codes:
test_verification.py; the `kicked` event on MQTT: tests/e2e/test_kick.py."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import register, unique_id
from tests.stacks import Stack


def assert_error(response: httpx.Response, status: int, code: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    # A rate-limit refusal also says when to try again (and so does its Retry-After header).
    extra = {"retry_after"} if code == 1006 else set()
    assert set(body) == {"code", "msg", "error"} | extra
    assert (body["code"], body["error"]) == (code, error)
    if extra:
        assert body["retry_after"] >= 1
        assert response.headers["Retry-After"] == str(body["retry_after"])
    assert body["msg"]
    assert "Traceback" not in response.text


async def test_register_then_login_by_id_email_or_phone(http: httpx.AsyncClient) -> None:
    uid = unique_id()
    email = f"{uid}@example.com"
    phone = "+4915" + str(int(uid[1:], 16))[-9:]
    account = await register(http, uid, email=email, phone=phone)
    me = await http.get("/api/me", headers=account.auth)
    assert me.json() == {"code": 0, "msg": "ok", "data": {
        "id": uid, "name": uid[:20], "email": email, "phone": phone, "avatar_url": None,
        "bio": None, "extra": None, "email_verified_at": None,
        "created_at": me.json()["data"]["created_at"], "is_bot": False}}
    for login in (uid, email.upper(), phone):
        response = await http.post("/api/auth/login", json={
            "login": login, "password": account.password, "platform": "web"})
        assert response.status_code == 200, login
        data = response.json()["data"]
        assert data["user"]["id"] == uid
        assert data["restored"] is False
        assert data["mqtt"]["username"] == uid
        assert data["mqtt"]["password"] == data["token"]
        assert data["expires_in"] > 0


async def test_login_failures_look_the_same(http: httpx.AsyncClient) -> None:
    account = await register(http)
    wrong = await http.post("/api/auth/login", json={"login": account.user_id,
                                                     "password": "wrong-pass-1"})
    unknown = await http.post("/api/auth/login", json={"login": unique_id(),
                                                       "password": "wrong-pass-1"})
    assert_error(wrong, 401, 2005, "login_failed")
    assert_error(unknown, 401, 2005, "login_failed")
    assert wrong.json()["msg"] == unknown.json()["msg"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "password": "short1"}, 1001),
        ({"name": "x", "password": "onlyletters"}, 1001),
        ({"name": "", "password": "pass-word-1"}, 1001),
        ({"name": "n" * 21, "password": "pass-word-1"}, 1001),
        ({"name": "x", "password": "pass-word-1", "user_id": "has/slash"}, 1001),
        ({"name": "x", "password": "pass-word-1", "user_id": "mqim-bridge"}, 1001),
        ({"name": "x", "password": "pass-word-1", "email": "not-an-email"}, 1001),
        ({"name": 5, "password": "pass-word-1"}, 1001),
    ],
)
async def test_register_rejects_bad_input(http: httpx.AsyncClient, body: dict[str, object],
                                          code: int) -> None:
    assert_error(await http.post("/api/auth/register", json=body), 400, code, "invalid_parameter")


async def test_register_twice_is_user_exists(http: httpx.AsyncClient) -> None:
    account = await register(http, email=f"{unique_id()}@example.com")
    again = await http.post("/api/auth/register", json={
        "user_id": account.user_id, "name": "x", "password": "pass-word-1"})
    assert_error(again, 409, 2007, "user_exists")


async def test_malformed_requests_get_the_envelope(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/api/auth/login", content=b"{not json"), 400, 1001,
                 "invalid_parameter")
    assert_error(await http.get("/api/nope"), 404, 1005, "not_found")
    assert_error(await http.put("/api/me"), 405, 1001, "method_not_allowed")
    assert_error(await http.get("/api/me"), 401, 2001, "token_invalid")
    assert_error(await http.get("/api/me", headers={"Authorization": "Bearer x.y.z"}), 401, 2001,
                 "token_invalid")


async def test_refresh_rotates_and_reuse_ends_the_session(http: httpx.AsyncClient) -> None:
    account = await register(http)
    first = await http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["data"]
    assert rotated["refresh_token"] != account.refresh_token
    assert (await http.get("/api/me", headers={"Authorization": f"Bearer {rotated['token']}"})
            ).is_success
    # Replaying the old refresh token looks like theft: the whole session ends.
    replay = await http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_error(replay, 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/refresh", json={
        "refresh_token": rotated["refresh_token"]}), 401, 2001, "token_invalid")
    assert_error(await http.get("/api/me", headers={
        "Authorization": f"Bearer {rotated['token']}"}), 401, 2001, "token_invalid")


async def test_new_login_on_same_platform_ends_the_older_session(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http, platform="ios")
    other = await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": "web"})
    again = await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": "ios"})
    assert again.status_code == 200
    assert_error(await http.get("/api/me", headers=account.auth), 401, 2001, "token_invalid")
    web = {"Authorization": f"Bearer {other.json()['data']['token']}"}
    assert (await http.get("/api/me", headers=web)).is_success
    assert_error(await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": "toaster"}),
        400, 1001, "invalid_parameter")


@pytest.mark.parametrize(("platform", "name"), [(1, "ios"), (2, "android"), (3, "windows"),
                                                (4, "macos"), (5, "web"), ("Linux", "linux")])
async def test_platform_is_a_name_or_a_seed_platform_id(
    http: httpx.AsyncClient, platform: object, name: str
) -> None:
    account = await register(http)
    response = await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": platform})
    assert response.status_code == 200, response.text
    sessions = await http.get("/api/me/sessions", headers={
        "Authorization": f"Bearer {response.json()['data']['token']}"})
    current = [s for s in sessions.json()["data"] if s["current"]]
    assert [s["platform"] for s in current] == [name]


@pytest.mark.parametrize("platform", [0, 6, "toaster", "", 1.5, None])
async def test_unknown_platform_is_refused(http: httpx.AsyncClient, platform: object) -> None:
    account = await register(http)
    assert_error(await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": platform}),
        400, 1001, "invalid_parameter")
    assert_error(await http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1", "platform": platform}),
        400, 1001, "invalid_parameter")


async def test_register_answers_201_with_the_token_bundle(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/auth/register", json={
        "name": "  Zoë 🦊  ", "password": "pass-word-1", "platform": "ios"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"token", "expires_in", "refresh_token", "session_id", "user", "mqtt",
                         "restored"}
    assert data["restored"] is False
    assert data["user"]["name"] == "Zoë 🦊"  # any UTF-8, trimmed (seed: at most 20 chars)
    assert data["user"]["id"].startswith("u")  # generated when not given
    assert "pass-word-1" not in response.text
    assert not [key for key in data["user"] if "password" in key or "hash" in key]


async def test_logout_ends_this_session_only(http: httpx.AsyncClient) -> None:
    account = await register(http)
    other = await http.post("/api/auth/login", json={
        "login": account.user_id, "password": account.password, "platform": "android"})
    assert (await http.post("/api/auth/logout", headers=account.auth)).is_success
    assert_error(await http.get("/api/me", headers=account.auth), 401, 2001, "token_invalid")
    assert_error(await http.post("/api/auth/refresh", json={
        "refresh_token": account.refresh_token}), 401, 2001, "token_invalid")
    android = {"Authorization": f"Bearer {other.json()['data']['token']}"}
    assert (await http.get("/api/me", headers=android)).is_success


async def test_health(server: Stack, http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.json() == {"code": 0, "msg": "ok", "data": {"status": "ok"}}
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert "process_cpu_seconds_total" in metrics.text or "python_info" in metrics.text
