"""The HTTP auth hooks of external brokers, over real HTTP against a real `mqim serve` stack.

The session server has no hook secret, so this module starts its own server with one. Requests are
shaped exactly as each broker documents them: mosquitto-go-auth (and amqtt's contrib HTTP
plugins), EMQX 5 and VerneMQ webhooks.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.link.client import derive_service_password
from config import Settings
from models.tokens import decode_access_token, issue_access_token
from mqim.serve import running_server
from tests.api.test_accounts import assert_error
from tests.helpers import Account, create_group, make_settings, register, unique_id
from tests.stacks import settings_env

SECRET = "hook-" + secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {SECRET}"}
BASE = "/api/internal/mqtt"
GO_USER, GO_SUPER = f"{BASE}/go-auth/user", f"{BASE}/go-auth/superuser"
GO_ACL = f"{BASE}/go-auth/acl"
AUTHN, AUTHZ, VMQ = f"{BASE}/emqx/authn", f"{BASE}/emqx/authz", f"{BASE}/vernemq"
ALL_ROUTES = [GO_USER, GO_SUPER, GO_ACL, AUTHN, AUTHZ, VMQ]


@dataclass
class Hooks:
    settings: Settings
    http: httpx.AsyncClient

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    @property
    def service(self) -> tuple[str, str]:
        name = self.settings.bridge_username
        return name, derive_service_password(self.settings.jwt_secret, name)

    async def go(self, path: str, body: dict[str, Any], mode: str | None = None) -> httpx.Response:
        params = {"mode": mode} if mode else None
        return await self.http.post(path, json=body, headers=AUTH, params=params)

    async def go_allowed(self, path: str, body: dict[str, Any]) -> bool:
        """The go-auth answer in status mode: 200 allow, 403 deny (anything else fails)."""
        response = await self.go(path, body)
        assert response.status_code in (200, 403), response.text
        return response.status_code == 200

    async def emqx(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers={"X-Mqim-Hook-Secret": SECRET})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def authz(self, username: str, topic: str, action: str, **extra: Any) -> str:
        body = {"username": username, "clientid": username, "topic": topic, "action": action}
        result: str = (await self.emqx(AUTHZ, {**body, **extra}))["result"]
        return result

    async def vmq(self, hook: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(VMQ, json=body, headers={**AUTH, "vernemq-hook": hook})

    async def member_may_read(self, account: Account, thread_id: str) -> bool:
        """Every broker's answer to "may this user subscribe to the thread?"; they must agree."""
        topic = f"{self.prefix}/t/{thread_id}"
        go = await self.go_allowed(GO_ACL, {"username": account.user_id, "topic": topic,
                                            "clientid": account.user_id, "acc": 4})
        go_read = await self.go_allowed(GO_ACL, {"username": account.user_id, "topic": topic,
                                                 "clientid": account.user_id, "acc": 1})
        emqx = await self.authz(account.user_id, topic, "subscribe") == "allow"
        vmq = await self.vmq("auth_on_subscribe", {
            "username": account.user_id, "client_id": account.user_id, "mountpoint": "",
            "topics": [{"topic": topic, "qos": 1}]})
        vmq_ok = vmq.json()["topics"] == [{"topic": topic, "qos": 1}]
        assert go == go_read == emqx == vmq_ok
        return go


@pytest.fixture(scope="module")
async def hooks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hooks]:
    data_dir: Path = tmp_path_factory.mktemp("mqim-hooks")
    settings = make_settings(data_dir, mqtt_hook_secret=SECRET)
    async with running_server(settings), httpx.AsyncClient(
        base_url=f"http://{settings.http}", timeout=10
    ) as http:
        yield Hooks(settings, http)


def user_body(account: Account, **changes: Any) -> dict[str, Any]:
    body = {"username": account.user_id, "password": account.token,
            "clientid": account.mqtt["client_id"]}
    return {**body, **changes}


def expired_token(settings: Settings, account: Account) -> str:
    claims = decode_access_token(settings.jwt_secret, account.token)
    return issue_access_token(settings.jwt_secret, account.user_id, claims.session_id, -60)


# --- the secret --------------------------------------------------------------------------------


async def test_hooks_answer_404_when_no_secret_is_configured(http: httpx.AsyncClient) -> None:
    # The session server runs without MQIM_MQTT_HOOK_SECRET.
    for path in ALL_ROUTES:
        response = await http.post(path, json={}, headers=AUTH)
        assert_error(response, 404, 1005, "not_found")


async def test_missing_or_wrong_secret_is_401(hooks: Hooks) -> None:
    wrong = [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": SECRET},
        {"Authorization": f"Basic {SECRET}"},
        {"X-Mqim-Hook-Secret": SECRET[:-1]},
    ]
    for path in ALL_ROUTES:
        for headers in wrong:
            response = await hooks.http.post(path, json={}, headers=headers)
            assert_error(response, 401, 2001, "token_invalid")
        response = await hooks.http.post(path, json={}, params={"secret": "x" + SECRET})
        assert_error(response, 401, 2001, "token_invalid")


async def test_secret_is_accepted_in_header_bearer_or_query(hooks: Hooks) -> None:
    name, password = hooks.service
    body = {"username": name, "password": password, "clientid": "mqim-bridge"}
    responses = [
        await hooks.http.post(GO_USER, json=body, headers=AUTH),
        await hooks.http.post(GO_USER, json=body, headers={"X-Mqim-Hook-Secret": SECRET}),
        await hooks.http.post(GO_USER, json=body, params={"secret": SECRET}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]


# --- mosquitto-go-auth / amqtt contrib ---------------------------------------------------------


async def test_go_auth_user_allows_a_live_token_with_an_own_client_id(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    assert await hooks.go_allowed(GO_USER, user_body(alice))
    assert await hooks.go_allowed(GO_USER, user_body(alice, clientid=alice.user_id))
    assert await hooks.go_allowed(GO_USER, user_body(alice, clientid=f"{alice.user_id}:tab-2"))
    # amqtt's contrib plugin spells it client_id.
    amqtt = {"username": alice.user_id, "password": alice.token, "client_id": alice.user_id}
    assert await hooks.go_allowed(GO_USER, amqtt)


async def test_go_auth_user_denies_bad_tokens_users_and_client_ids(hooks: Hooks) -> None:
    alice, bob = await register(hooks.http), await register(hooks.http)
    name, _ = hooks.service
    denied = [
        user_body(alice, password=expired_token(hooks.settings, alice)),
        user_body(alice, password=alice.token[:-2] + "xx"),
        user_body(alice, password=""),
        user_body(alice, password=None),
        user_body(alice, password=bob.token),
        user_body(alice, username=bob.user_id, clientid=bob.user_id),
        user_body(alice, clientid=bob.user_id),
        user_body(alice, clientid=f"{alice.user_id}x"),
        user_body(alice, clientid=f"{bob.user_id}:{alice.user_id}"),
        user_body(alice, clientid="mqim-bridge"),
        user_body(alice, clientid=""),
        user_body(alice, username=None),
        user_body(alice, username=""),
        # A user's token is no service password, and the other way round.
        {"username": name, "password": alice.token, "clientid": "mqim-bridge"},
        {"username": alice.user_id, "password": hooks.service[1], "clientid": alice.user_id},
    ]
    for body in denied:
        assert not await hooks.go_allowed(GO_USER, body), body


async def test_go_auth_user_denies_a_token_after_logout(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    assert await hooks.go_allowed(GO_USER, user_body(alice))
    response = await hooks.http.post("/api/auth/logout", headers=alice.auth)
    assert response.status_code == 200
    assert not await hooks.go_allowed(GO_USER, user_body(alice))


async def test_go_auth_service_account_and_superuser(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    name, password = hooks.service
    assert await hooks.go_allowed(GO_USER, {"username": name, "password": password,
                                            "clientid": "mqim-api-1234"})
    assert not await hooks.go_allowed(GO_USER, {"username": name, "password": password + "x",
                                                "clientid": "mqim-bridge"})
    assert await hooks.go_allowed(GO_SUPER, {"username": name})
    assert not await hooks.go_allowed(GO_SUPER, {"username": alice.user_id})
    assert not await hooks.go_allowed(GO_SUPER, {"username": ""})


async def test_go_auth_reply_modes(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    good, bad = user_body(alice), user_body(alice, password="nope")

    allow, deny = await hooks.go(GO_USER, good), await hooks.go(GO_USER, bad)
    assert (allow.status_code, allow.json()) == (200, {"code": 0, "msg": "ok",
                                                       "data": {"ok": True}})
    assert_error(deny, 403, 1004, "forbidden")

    allow, deny = await hooks.go(GO_USER, good, "json"), await hooks.go(GO_USER, bad, "json")
    assert (allow.status_code, allow.json()) == (200, {"Ok": True, "Error": ""})
    assert deny.status_code == 200
    assert deny.json()["Ok"] is False
    assert deny.json()["Error"]

    allow, deny = await hooks.go(GO_USER, good, "text"), await hooks.go(GO_USER, bad, "text")
    assert (allow.status_code, allow.text) == (200, "ok")
    assert (deny.status_code, deny.text) == (200, "error")

    assert_error(await hooks.go(GO_USER, good, "xml"), 400, 1001, "invalid_parameter")


async def test_go_auth_accepts_form_bodies_and_get_queries(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    form = await hooks.http.post(GO_USER, data=user_body(alice), headers=AUTH)
    assert form.status_code == 200, form.text
    topic = f"{hooks.prefix}/up/{alice.user_id}"
    acl = {"username": alice.user_id, "clientid": alice.user_id, "topic": topic}
    write = await hooks.http.post(GO_ACL, data={**acl, "acc": "2"}, headers=AUTH)
    subscribe = await hooks.http.post(GO_ACL, data={**acl, "acc": "4"}, headers=AUTH)
    assert (write.status_code, subscribe.status_code) == (200, 403)
    # amqtt with request_method GET and params_mode form sends the query string.
    query = await hooks.http.get(GO_ACL, params={**acl, "acc": "2", "mode": "text"},
                                 headers=AUTH)
    assert (query.status_code, query.text) == (200, "ok")
    # amqtt's defaults: GET with a JSON body; go-auth's http_method may be PUT.
    get = await hooks.http.request("GET", GO_ACL, json={**acl, "acc": 2}, headers=AUTH)
    put = await hooks.http.put(GO_ACL, json={**acl, "acc": 2}, headers=AUTH)
    assert (get.status_code, put.status_code) == (200, 200)


async def test_go_auth_acl_follows_the_topic_rule(hooks: Hooks) -> None:
    alice, bob, carol = [await register(hooks.http) for _ in range(3)]
    thread_id = await create_group(hooks.http, alice, bob)
    p = hooks.prefix

    async def allowed(account: Account, topic: str, acc: int) -> bool:
        return await hooks.go_allowed(GO_ACL, {"username": account.user_id, "topic": topic,
                                               "clientid": account.user_id, "acc": acc})

    read, write, readwrite, subscribe = 1, 2, 3, 4
    assert await allowed(alice, f"{p}/up/{alice.user_id}", write)
    assert not await allowed(alice, f"{p}/up/{bob.user_id}", write)
    assert not await allowed(alice, f"{p}/up/{alice.user_id}", readwrite)
    assert not await allowed(alice, f"{p}/up/{alice.user_id}", subscribe)
    assert not await allowed(alice, f"{p}/t/{thread_id}", write)
    assert not await allowed(alice, f"{p}/u/{alice.user_id}", write)
    for acc in (read, subscribe):
        assert await allowed(alice, f"{p}/u/{alice.user_id}", acc)
        assert not await allowed(alice, f"{p}/u/{bob.user_id}", acc)
        assert await allowed(bob, f"{p}/t/{thread_id}", acc)
        assert not await allowed(carol, f"{p}/t/{thread_id}", acc)
    for wildcard in (f"{p}/t/+", f"{p}/#", "#", f"{p}/u/+", f"{p}/up/+", f"$share/g/{p}/up/+"):
        assert not await allowed(alice, wildcard, subscribe), wildcard
    service, _ = hooks.service
    service_acl = {"username": service, "clientid": "mqim-bridge"}
    for topic, acc in ((f"$share/mqim/{p}/up/+", subscribe), (f"{p}/t/{thread_id}", write),
                       (f"{p}/u/{alice.user_id}", readwrite), (f"{p}/up/{bob.user_id}", read)):
        assert await hooks.go_allowed(GO_ACL, {**service_acl, "topic": topic, "acc": acc})


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (GO_ACL, {"username": "u1", "topic": "im/u/u1", "clientid": "u1", "acc": 5}),
        (GO_ACL, {"username": "u1", "topic": "im/u/u1", "clientid": "u1", "acc": "read"}),
        (GO_ACL, {"username": "u1", "clientid": "u1", "acc": 1}),
        (GO_ACL, ["not", "an", "object"]),
        (GO_USER, "just a string"),
    ],
)
async def test_go_auth_rejects_malformed_requests(hooks: Hooks, path: str, body: Any) -> None:
    assert_error(await hooks.http.post(path, json=body, headers=AUTH), 400, 1001,
                 "invalid_parameter")


async def test_go_auth_rejects_bodies_that_do_not_parse(hooks: Hooks) -> None:
    for content, content_type in ((b"{nope", "application/json"),
                                  (b"a=1&&=&b", "application/x-www-form-urlencoded"),
                                  (b"\xff\xfe", "application/x-www-form-urlencoded")):
        response = await hooks.http.post(GO_USER, content=content,
                                         headers={**AUTH, "Content-Type": content_type})
        assert_error(response, 400, 1001, "invalid_parameter")


# --- EMQX 5 ------------------------------------------------------------------------------------


async def test_emqx_authn_allows_a_user_with_expiry_and_static_acl(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    body = {"username": alice.user_id, "password": alice.token,
            "clientid": alice.mqtt["client_id"]}
    result = await hooks.emqx(AUTHN, body)
    expires_at = decode_access_token(hooks.settings.jwt_secret, alice.token).expires_at
    p = hooks.prefix
    assert result == {
        "result": "allow",
        "is_superuser": False,
        "expire_at": expires_at,
        "acl": [
            {"permission": "deny", "action": "publish", "topic": "#", "retain": True},
            {"permission": "allow", "action": "publish", "topic": f"{p}/up/${{username}}"},
            {"permission": "allow", "action": "subscribe", "topic": f"{p}/u/${{username}}"},
        ],
    }


async def test_emqx_authn_service_account_is_superuser(hooks: Hooks) -> None:
    name, password = hooks.service
    result = await hooks.emqx(AUTHN, {"username": name, "password": password,
                                      "clientid": "mqim-bridge"})
    assert result == {"result": "allow", "is_superuser": True}


async def test_emqx_authn_denies_bad_credentials(hooks: Hooks) -> None:
    alice, bob = await register(hooks.http), await register(hooks.http)
    name, _ = hooks.service
    for body in (
        {"username": alice.user_id, "password": expired_token(hooks.settings, alice),
         "clientid": alice.user_id},
        {"username": alice.user_id, "password": bob.token, "clientid": alice.user_id},
        {"username": alice.user_id, "password": alice.token, "clientid": bob.user_id},
        {"username": alice.user_id, "clientid": alice.user_id},
        {"username": None, "password": alice.token, "clientid": alice.user_id},
        {"username": name, "password": "guess", "clientid": "mqim-bridge"},
    ):
        assert await hooks.emqx(AUTHN, body) == {"result": "deny", "is_superuser": False}, body


async def test_emqx_authz_publish_and_subscribe(hooks: Hooks) -> None:
    alice, bob, carol = [await register(hooks.http) for _ in range(3)]
    thread_id = await create_group(hooks.http, alice, bob)
    p = hooks.prefix
    a = alice.user_id
    assert await hooks.authz(a, f"{p}/up/{a}", "publish") == "allow"
    assert await hooks.authz(a, f"{p}/up/{a}", "publish", retain=False) == "allow"
    assert await hooks.authz(a, f"{p}/up/{a}", "publish", retain="false") == "allow"
    assert await hooks.authz(a, f"{p}/up/{a}", "publish", retain="true") == "deny"
    assert await hooks.authz(a, f"{p}/up/{a}", "publish", retain=True) == "deny"
    assert await hooks.authz(a, f"{p}/up/{bob.user_id}", "publish") == "deny"
    assert await hooks.authz(a, f"{p}/t/{thread_id}", "publish") == "deny"
    assert await hooks.authz(a, f"{p}/up/{a}", "subscribe") == "deny"
    assert await hooks.authz(a, f"{p}/u/{a}", "subscribe") == "allow"
    assert await hooks.authz(a, f"{p}/u/{bob.user_id}", "subscribe") == "deny"
    assert await hooks.authz(bob.user_id, f"{p}/t/{thread_id}", "subscribe") == "allow"
    assert await hooks.authz(carol.user_id, f"{p}/t/{thread_id}", "subscribe") == "deny"
    assert await hooks.authz(a, f"{p}/t/+", "subscribe") == "deny"
    assert await hooks.authz(a, "#", "subscribe") == "deny"
    service, _ = hooks.service
    assert await hooks.authz(service, f"{p}/t/{thread_id}", "publish") == "allow"
    assert await hooks.authz(service, f"{p}/up/+", "subscribe") == "allow"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (AUTHN, {"username": "u1", "password": "p"}),
        (AUTHN, {"username": 5, "password": "p", "clientid": "u1"}),
        (AUTHZ, {"username": "u1", "clientid": "u1", "topic": "im/u/u1", "action": "all"}),
        (AUTHZ, {"username": "u1", "clientid": "u1", "action": "publish"}),
        (AUTHZ, {"username": "u1", "clientid": "u1", "topic": "im/up/u1", "action": "publish",
                 "retain": "maybe"}),
        (AUTHZ, []),
    ],
)
async def test_emqx_rejects_malformed_requests(hooks: Hooks, path: str, body: Any) -> None:
    assert_error(await hooks.http.post(path, json=body, headers=AUTH), 400, 1001,
                 "invalid_parameter")
    not_json = await hooks.http.post(path, content=b"<xml/>", headers=AUTH)
    assert_error(not_json, 400, 1001, "invalid_parameter")


# --- VerneMQ webhooks --------------------------------------------------------------------------


def register_body(account: Account, **changes: Any) -> dict[str, Any]:
    body = {"peer_addr": "127.0.0.1", "peer_port": 50123, "mountpoint": "",
            "username": account.user_id, "password": account.token,
            "client_id": account.mqtt["client_id"], "clean_session": True}
    return {**body, **changes}


async def test_vernemq_register(hooks: Hooks) -> None:
    alice, bob = await register(hooks.http), await register(hooks.http)
    ok, not_allowed = {"result": "ok"}, {"result": {"error": "not_allowed"}}
    for hook in ("auth_on_register", "auth_on_register_m5"):
        extra = {"clean_start": True, "properties": {}} if hook.endswith("_m5") else {}
        cases = [
            (register_body(alice, **extra), ok),
            (register_body(alice, password=bob.token, **extra), not_allowed),
            (register_body(alice, password=expired_token(hooks.settings, alice), **extra),
             not_allowed),
            (register_body(alice, client_id=bob.user_id, **extra), not_allowed),
            (register_body(alice, username=None, password=None, **extra), not_allowed),
        ]
        for body, expected in cases:
            response = await hooks.vmq(hook, body)
            assert response.status_code == 200
            assert response.json() == expected, body
            assert response.headers["cache-control"] == "no-store"
    name, password = hooks.service
    service = await hooks.vmq("auth_on_register", {
        "username": name, "password": password, "client_id": "mqim-bridge", "mountpoint": ""})
    assert service.json() == ok


async def test_vernemq_subscribe_refuses_single_topics(hooks: Hooks) -> None:
    alice, bob = await register(hooks.http), await register(hooks.http)
    thread_id = await create_group(hooks.http, bob)
    p, a = hooks.prefix, alice.user_id
    topics = [{"topic": f"{p}/u/{a}", "qos": 1}, {"topic": f"{p}/t/{thread_id}", "qos": 1},
              {"topic": f"{p}/#", "qos": 0}]
    body = {"username": a, "client_id": a, "mountpoint": "", "topics": topics}
    v3 = await hooks.vmq("auth_on_subscribe", body)
    assert v3.status_code == 200
    assert v3.headers["cache-control"] == "no-store"
    assert v3.json() == {"result": "ok", "topics": [
        {"topic": f"{p}/u/{a}", "qos": 1}, {"topic": f"{p}/t/{thread_id}", "qos": 128},
        {"topic": f"{p}/#", "qos": 128}]}

    # MQTT 5: the rewritten list goes in modifiers, allowed entries keep their options.
    options = {"no_local": True, "rap": False, "retain_handling": "dont_send"}
    m5_topics = [{**t, **options} for t in topics]
    v5 = await hooks.vmq("auth_on_subscribe_m5", {**body, "topics": m5_topics,
                                                  "properties": {}})
    assert v5.json() == {"result": "ok", "modifiers": {"topics": [
        {"topic": f"{p}/u/{a}", "qos": 1, **options},
        {"topic": f"{p}/t/{thread_id}", "qos": 135}, {"topic": f"{p}/#", "qos": 135}]}}


async def test_vernemq_publish(hooks: Hooks) -> None:
    alice, bob = await register(hooks.http), await register(hooks.http)
    p, a = hooks.prefix, alice.user_id
    publish = {"username": a, "client_id": a, "mountpoint": "", "qos": 1,
               "topic": f"{p}/up/{a}", "payload": "eyJvcCI6Im5vb3AifQ==", "retain": False}
    not_allowed = {"result": {"error": "not_allowed"}}
    for hook in ("auth_on_publish", "auth_on_publish_m5"):
        allowed = await hooks.vmq(hook, publish)
        assert (allowed.status_code, allowed.json()) == (200, {"result": "ok"})
        assert allowed.headers["cache-control"] == "max-age=60"
        for changes in ({"topic": f"{p}/up/{bob.user_id}"}, {"topic": f"{p}/u/{a}"},
                        {"retain": True}, {"username": None}):
            denied = await hooks.vmq(hook, {**publish, **changes})
            assert (denied.status_code, denied.json()) == (200, not_allowed), changes
            assert denied.headers["cache-control"] == "no-store"
    service, _ = hooks.service
    bridge = await hooks.vmq("auth_on_publish", {**publish, "username": service,
                                                 "client_id": "mqim-bridge",
                                                 "topic": f"{p}/u/{a}"})
    assert bridge.json() == {"result": "ok"}


async def test_vernemq_rejects_unknown_hooks_and_malformed_bodies(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    for hook in ("", "on_register", "auth_on_unsubscribe"):
        response = await hooks.vmq(hook, register_body(alice))
        assert_error(response, 400, 1001, "invalid_parameter")
    no_header = await hooks.http.post(VMQ, json=register_body(alice), headers=AUTH)
    assert_error(no_header, 400, 1001, "invalid_parameter")
    for hook, body in (
        ("auth_on_register", {"username": alice.user_id, "password": alice.token}),
        ("auth_on_subscribe", {"username": alice.user_id, "client_id": alice.user_id,
                               "topics": [{"topic": "im/u/x"}]}),
        ("auth_on_subscribe", {"username": alice.user_id, "client_id": alice.user_id,
                               "topics": "im/u/x"}),
        ("auth_on_publish", {"username": alice.user_id, "client_id": alice.user_id,
                             "qos": 1, "retain": False}),
        ("auth_on_publish", {"username": alice.user_id, "client_id": alice.user_id,
                             "topic": "im/up/x", "qos": 1, "retain": "yes"}),
    ):
        assert_error(await hooks.vmq(hook, body), 400, 1001, "invalid_parameter")


# --- membership changes ------------------------------------------------------------------------


async def test_membership_changes_are_reflected_at_once(hooks: Hooks) -> None:
    owner, bob = await register(hooks.http), await register(hooks.http)
    thread_id = await create_group(hooks.http, owner)
    assert not await hooks.member_may_read(bob, thread_id)

    added = await hooks.http.post(f"/api/threads/{thread_id}/members", headers=owner.auth,
                                  json={"user_ids": [bob.user_id]})
    assert added.status_code == 200, added.text
    assert await hooks.member_may_read(bob, thread_id)

    removed = await hooks.http.delete(f"/api/threads/{thread_id}/members/{bob.user_id}",
                                      headers=owner.auth)
    assert removed.status_code == 200, removed.text
    assert not await hooks.member_may_read(bob, thread_id)
    # Still decided per request, not per user: the owner keeps access.
    assert await hooks.member_may_read(owner, thread_id)


async def test_unknown_thread_is_denied(hooks: Hooks) -> None:
    alice = await register(hooks.http)
    assert not await hooks.member_may_read(alice, unique_id("t"))


# --- extra rules -------------------------------------------------------------------------------


async def make_admin(hooks: Hooks) -> Account:
    admin = await register(hooks.http)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mqim", "admin", "grant", admin.user_id,
        env=settings_env(hooks.settings), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return admin


async def test_rules_expanded_into_the_mqim_tree_grant_nothing_there(hooks: Hooks) -> None:
    # `%u/#` gives each user a namespace of their own; the user who registers the topic prefix
    # as an id must not get the whole tree through it, from any broker's hook.
    p = hooks.prefix
    admin = await make_admin(hooks)
    intruder, bob = await register(hooks.http, user_id=p), await register(hooks.http)
    thread_id = await create_group(hooks.http, bob)
    rule = await hooks.http.post("/api/admin/acl/rules", headers=admin.auth,
                                 json={"topic": "%u/#", "access": "readwrite"})
    assert rule.status_code == 201, rule.text
    me = intruder.user_id

    async def vmq_subscribe(user: str, topic: str) -> int:
        response = await hooks.vmq("auth_on_subscribe", {
            "username": user, "client_id": user, "mountpoint": "",
            "topics": [{"topic": topic, "qos": 1}]})
        qos: int = response.json()["topics"][0]["qos"]
        return qos

    async def vmq_publish(user: str, topic: str) -> bool:
        response = await hooks.vmq("auth_on_publish", {
            "username": user, "client_id": user, "mountpoint": "", "qos": 1, "topic": topic,
            "payload": "eA==", "retain": False})
        return bool(response.json() == {"result": "ok"})

    try:
        for topic in (f"{p}/#", f"{p}/+", f"{p}/t/+", f"{p}/t/{thread_id}", f"{p}/x/y",
                      f"{p}/u/{bob.user_id}", p, "#", "+/#", "+/t/x"):
            for acc in (1, 3, 4):
                assert not await hooks.go_allowed(GO_ACL, {
                    "username": me, "topic": topic, "clientid": me, "acc": acc}), (topic, acc)
            assert await hooks.authz(me, topic, "subscribe") == "deny", topic
            assert await vmq_subscribe(me, topic) == 128, topic
        for topic in (f"{p}/x/y", f"{p}/up/{bob.user_id}", f"{p}/t/{thread_id}", p):
            assert not await hooks.go_allowed(GO_ACL, {
                "username": me, "topic": topic, "clientid": me, "acc": 2}), topic
            assert await hooks.authz(me, topic, "publish") == "deny", topic
            assert not await vmq_publish(me, topic), topic
        # Outside the tree the rule still grants, and the fixed rules are unchanged.
        b = bob.user_id
        assert await hooks.go_allowed(GO_ACL, {"username": b, "topic": f"{b}/#",
                                               "clientid": b, "acc": 4})
        assert await hooks.authz(b, f"{b}/x", "publish") == "allow"
        assert await vmq_subscribe(b, f"{b}/+") == 1
        assert await hooks.authz(me, f"{p}/u/{me}", "subscribe") == "allow"
        # The admin's view of the intruder's ACL says the rule is void for them.
        acl = await hooks.http.get(f"/api/admin/users/{me}/acl", headers=admin.auth)
        assert acl.status_code == 200, acl.text
        lines = {line["topic"]: line["access"] for line in acl.json()["data"]}
        assert lines[f"{p}/#"] == "none"
        acl = await hooks.http.get(f"/api/admin/users/{b}/acl", headers=admin.auth)
        assert {line["topic"]: line["access"] for line in acl.json()["data"]}[f"{b}/#"] == (
            "readwrite")
    finally:
        rule_id = rule.json()["data"]["id"]
        deleted = await hooks.http.delete(f"/api/admin/acl/rules/{rule_id}", headers=admin.auth)
        assert deleted.is_success, deleted.text
