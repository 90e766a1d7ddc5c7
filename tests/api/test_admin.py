"""Admin features over real HTTP: bans, extra ACL rules, a user's effective ACL."""

from __future__ import annotations

import httpx

from tests.api.test_accounts import assert_error
from tests.helpers import Account, create_group, register
from tests.stacks import Stack


async def make_admin(server: Stack, http: httpx.AsyncClient) -> Account:
    admin = await register(http)
    await server.cli("admin", "grant", admin.user_id)
    return admin


async def test_only_admins_reach_admin_routes(
    server: Stack, http: httpx.AsyncClient
) -> None:
    user, victim = await register(http), await register(http)
    for method, path in (("POST", f"/api/admin/users/{victim.user_id}/ban"),
                         ("GET", "/api/admin/acl/rules"),
                         ("GET", f"/api/admin/users/{victim.user_id}/acl")):
        response = await http.request(method, path, headers=user.auth)
        assert_error(response, 403, 1004, "forbidden")
    assert (await http.get("/api/me", headers=victim.auth)).is_success


async def test_ban_ends_sessions_refuses_login_and_unban_restores(
    server: Stack, http: httpx.AsyncClient
) -> None:
    admin, victim = await make_admin(server, http), await register(http)
    banned = await http.post(f"/api/admin/users/{victim.user_id}/ban", headers=admin.auth)
    assert banned.json()["data"] == {"user_id": victim.user_id, "banned": True,
                                     "sessions_ended": 1}
    assert_error(await http.get("/api/me", headers=victim.auth), 401, 2001, "token_invalid")
    login = {"login": victim.user_id, "password": victim.password}
    assert_error(await http.post("/api/auth/login", json=login), 403, 2009, "account_banned")
    assert_error(await http.post(f"/api/admin/users/{admin.user_id}/ban", headers=admin.auth),
                 400, 1001, "invalid_parameter")
    assert_error(await http.post("/api/admin/users/nobody-x/ban", headers=admin.auth),
                 404, 2006, "user_not_found")
    assert (await http.delete(f"/api/admin/users/{victim.user_id}/ban",
                              headers=admin.auth)).is_success
    assert (await http.post("/api/auth/login", json=login)).status_code == 200


async def test_extra_rules_and_effective_acl(
    server: Stack, http: httpx.AsyncClient
) -> None:
    admin, device = await make_admin(server, http), await register(http)
    thread_id = await create_group(http, device)
    rule = await http.post("/api/admin/acl/rules", headers=admin.auth,
                           json={"topic": "devices/%u/#", "access": "write",
                                 "user_id": device.user_id})
    assert rule.status_code == 201, rule.text
    prefix = server.settings.topic_prefix
    for bad in ({"topic": f"{prefix}/t/+", "access": "read"}, {"topic": "#", "access": "read"},
                {"topic": "a/#/b", "access": "read"}, {"topic": "$SYS/x", "access": "read"},
                {"topic": "ok/x", "access": "everything"},
                {"topic": "ok/x", "access": "read", "user_id": "nobody-x"}):
        response = await http.post("/api/admin/acl/rules", headers=admin.auth, json=bad)
        assert response.status_code in (400, 404), (bad, response.text)
    acl = await http.get(f"/api/admin/users/{device.user_id}/acl", headers=admin.auth)
    assert [(line["topic"], line["access"]) for line in acl.json()["data"]] == [
        (f"{prefix}/up/{device.user_id}", "write"), (f"{prefix}/u/{device.user_id}", "read"),
        (f"{prefix}/t/{thread_id}", "read"), (f"devices/{device.user_id}/#", "write")]
    rule_id = rule.json()["data"]["id"]
    assert (await http.delete(f"/api/admin/acl/rules/{rule_id}", headers=admin.auth)).is_success
    assert_error(await http.delete(f"/api/admin/acl/rules/{rule_id}", headers=admin.auth),
                 404, 1005, "not_found")
