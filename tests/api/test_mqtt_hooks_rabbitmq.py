"""RabbitMQ's HTTP auth backend routes over real HTTP against a real `mqim serve`, with requests
shaped as rabbitmq_auth_backend_http 3.10 sends them (recorded from a real node): form fields in
a POST body, or with GET appended to the configured URL as `?secret=S?username=...`.
tests/cluster/ runs the same routes behind a real 3-node RabbitMQ cluster."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from broker.link.client import derive_service_password
from config import Settings
from contract.hooks_rabbitmq import routing_key_to_topic, subscription_queue_client
from mqim.serve import running_server
from tests.helpers import create_group, make_settings, register, unique_id

SECRET = "hook-" + secrets.token_urlsafe(24)
BASE = "/api/internal/mqtt/rabbitmq"


@dataclass
class Rabbit:
    settings: Settings
    http: httpx.AsyncClient

    @property
    def service(self) -> tuple[str, str]:
        name = self.settings.bridge_username
        return name, derive_service_password(self.settings.jwt_secret, name)

    async def ask(self, path: str, method: str = "POST", secret: str = SECRET,
                  **fields: str) -> httpx.Response:
        if method == "GET":  # exactly the URL the backend builds: configured URL + "?" + query
            return await self.http.get(f"{BASE}/{path}?secret={secret}?{urlencode(fields)}")
        return await self.http.post(f"{BASE}/{path}?secret={secret}", content=urlencode(fields),
                                    headers={"content-type": "application/x-www-form-urlencoded"})

    async def allowed(self, path: str, method: str = "POST", **fields: str) -> bool:
        response = await self.ask(path, method, **fields)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text in ("allow", "deny"), response.text
        return response.text == "allow"

    async def login(self, username: str, password: str, client_id: str | None) -> bool:
        fields = {"username": username, "password": password, "vhost": "/"}
        if client_id is not None:
            fields["client_id"] = client_id
        post, get = await self.allowed("user", **fields), await self.allowed("user", "GET",
                                                                             **fields)
        assert post == get
        return post

    async def queue(self, username: str, name: str, permission: str = "configure",
                    client_id: str | None = None, resource: str = "queue",
                    vhost: str = "/") -> bool:
        return await self.allowed("resource", username=username, vhost=vhost, resource=resource,
                                  name=name, permission=permission,
                                  client_id=client_id or f"{username}:c")

    async def topic(self, username: str, key: str, permission: str,
                    exchange: str = "amq.topic") -> bool:
        return await self.allowed(
            "topic", username=username, vhost="/", resource="topic", name=exchange,
            permission=permission, routing_key=key, **{"variable_map.client_id": username})


@pytest.fixture(scope="module")
async def rabbit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rabbit]:
    data_dir: Path = tmp_path_factory.mktemp("mqim-rabbit-hooks")
    settings = make_settings(data_dir, mqtt_hook_secret=SECRET)
    async with running_server(settings), httpx.AsyncClient(
        base_url=f"http://{settings.http}", timeout=10
    ) as http:
        yield Rabbit(settings, http)


def test_routing_keys_map_back_to_topics_with_dotted_ids() -> None:
    assert routing_key_to_topic("im.t.a.b", "im") == "im/t/a.b"
    assert routing_key_to_topic("im.up.u.x.y", "im") == "im/up/u.x.y"
    assert routing_key_to_topic("my.app.im.u.x", "my.app/im") == "my.app/im/u/x"
    # Wildcards and keys outside the tree: every dot was a slash.
    assert routing_key_to_topic("im.t.*", "im") == "im/t/+"
    assert routing_key_to_topic("im.#", "im") == "im/#"
    assert routing_key_to_topic("im.t.a.#", "im") == "im/t/a/#"
    assert routing_key_to_topic("sensors.room1", "im") == "sensors/room1"
    assert routing_key_to_topic("im.t", "im") == "im/t"


def test_subscription_queue_names() -> None:
    assert subscription_queue_client("mqtt-subscription-u.x:abcqos1") == "u.x:abc"
    assert subscription_queue_client("mqtt-subscription-a:qos1qos0") == "a:qos1"
    assert subscription_queue_client("mqtt-subscription-qos1") is None
    assert subscription_queue_client("amq.gen-123") is None


async def test_wrong_or_missing_secret_is_401_and_malformed_is_400(rabbit: Rabbit) -> None:
    alice = await register(rabbit.http)
    fields = {"username": alice.user_id, "password": alice.token, "client_id": alice.user_id}
    for method in ("GET", "POST"):
        assert (await rabbit.ask("user", method, secret="nope", **fields)).status_code == 401
    bare = await rabbit.http.post(f"{BASE}/user", content=urlencode(fields))
    assert bare.status_code == 401
    assert (await rabbit.ask("user")).status_code == 400  # no username
    bad = await rabbit.ask("resource", username="x", vhost="/", resource="node", name="n",
                           permission="read")
    assert bad.status_code == 400


async def test_login_needs_a_live_token_and_an_own_client_id(rabbit: Rabbit) -> None:
    alice, bob = await register(rabbit.http), await register(rabbit.http)
    assert await rabbit.login(alice.user_id, alice.token, alice.mqtt["client_id"])
    assert await rabbit.login(alice.user_id, alice.token, f"{alice.user_id}:phone")
    assert not await rabbit.login(alice.user_id, bob.token, alice.user_id)
    assert not await rabbit.login(alice.user_id, "not-a-token", alice.user_id)
    assert not await rabbit.login(alice.user_id, alice.token, bob.user_id)
    assert not await rabbit.login(alice.user_id, alice.token, f"{alice.user_id}x")
    # No client id: an AMQP (or management) login, which users never get.
    assert not await rabbit.login(alice.user_id, alice.token, None)
    service, password = rabbit.service
    assert await rabbit.login(service, password, None)
    assert not await rabbit.login(service, "wrong", None)
    logout = await rabbit.http.post("/api/auth/logout", headers=alice.auth)
    assert logout.status_code == 200, logout.text
    assert not await rabbit.login(alice.user_id, alice.token, alice.user_id)


async def test_vhost(rabbit: Rabbit) -> None:
    alice = await register(rabbit.http)
    assert await rabbit.allowed("vhost", username=alice.user_id, vhost="/", ip="127.0.0.1")
    assert not await rabbit.allowed("vhost", username=alice.user_id, vhost="other")
    assert await rabbit.allowed("vhost", "GET", username=rabbit.service[0], vhost="other")


async def test_resources_are_the_sessions_own_queues_and_amq_topic(rabbit: Rabbit) -> None:
    me = unique_id()
    other = me + "x"  # a prefix of the other's id must not let me at their queues
    for permission in ("configure", "read", "write"):
        for qos in ("qos0", "qos1"):
            assert await rabbit.queue(me, f"mqtt-subscription-{me}:c{qos}", permission)
            assert await rabbit.queue(me, f"mqtt-subscription-{me}{qos}", permission,
                                      client_id=me)
        assert not await rabbit.queue(me, f"mqtt-subscription-{other}:cqos1", permission)
        assert not await rabbit.queue(me, f"mqtt-subscription-{other}qos1", permission)
    # Another client of the same user does not get this client's queue.
    assert not await rabbit.queue(me, f"mqtt-subscription-{me}:aqos1", "read", client_id=f"{me}:b")
    assert not await rabbit.queue(me, "some-queue", "read")
    assert not await rabbit.queue(me, f"mqtt-subscription-{me}:cqos1", "read", vhost="other")
    assert await rabbit.queue(me, "amq.topic", "read", resource="exchange")
    assert await rabbit.queue(me, "amq.topic", "write", resource="exchange")
    assert not await rabbit.queue(me, "amq.topic", "configure", resource="exchange")
    assert not await rabbit.queue(me, "amq.direct", "write", resource="exchange")
    assert await rabbit.queue(rabbit.service[0], "mqim-uplinks", "configure")


async def test_topics_follow_the_rule_with_dotted_ids(rabbit: Rabbit) -> None:
    dotted = await register(rabbit.http, f"{unique_id()}.x.y")
    bob, carol = await register(rabbit.http), await register(rabbit.http)
    thread = await create_group(rabbit.http, dotted, bob)
    assert "." not in thread  # thread ids are the server's; user ids carry the dots
    me = dotted.user_id
    assert await rabbit.topic(me, f"im.up.{me}", "write")
    assert not await rabbit.topic(me, f"im.up.{bob.user_id}", "write")
    assert not await rabbit.topic(bob.user_id, f"im.up.{me}", "write")
    assert not await rabbit.topic(me, f"im.t.{thread}", "write")
    assert await rabbit.topic(me, f"im.u.{me}", "read")
    assert not await rabbit.topic(bob.user_id, f"im.u.{me}", "read")
    assert await rabbit.topic(me, f"im.t.{thread}", "read")
    assert await rabbit.topic(bob.user_id, f"im.t.{thread}", "read")
    assert not await rabbit.topic(carol.user_id, f"im.t.{thread}", "read")
    for wildcard in ("im.t.*", "im.#", "#", f"im.u.{me}.#", "im.*.*"):
        assert not await rabbit.topic(me, wildcard, "read"), wildcard
    assert not await rabbit.topic(me, f"im.up.{me}", "write", exchange="amq.direct")
    service = rabbit.service[0]
    assert await rabbit.topic(service, "im.up.#", "read")
    assert await rabbit.topic(service, f"im.t.{thread}", "write")


async def test_removal_is_answered_at_once(rabbit: Rabbit) -> None:
    owner, bob = await register(rabbit.http), await register(rabbit.http)
    thread = await create_group(rabbit.http, owner, bob)
    assert await rabbit.topic(bob.user_id, f"im.t.{thread}", "read")
    removed = await rabbit.http.delete(f"/api/threads/{thread}/members/{bob.user_id}",
                                       headers=owner.auth)
    assert removed.status_code == 200, removed.text
    assert not await rabbit.topic(bob.user_id, f"im.t.{thread}", "read")
    assert await rabbit.topic(owner.user_id, f"im.t.{thread}", "read")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_secret_may_also_come_in_a_header(rabbit: Rabbit, method: str) -> None:
    alice = await register(rabbit.http)
    query = urlencode({"username": alice.user_id, "password": alice.token,
                       "client_id": alice.user_id})
    headers = {"X-Mqim-Hook-Secret": SECRET}
    if method == "GET":
        response = await rabbit.http.get(f"{BASE}/user?{query}", headers=headers)
    else:
        response = await rabbit.http.post(f"{BASE}/user", content=query, headers=headers)
    assert response.status_code == 200, response.text
    assert response.text == "allow"


async def test_routes_answer_404_without_a_secret(http: httpx.AsyncClient) -> None:
    response = await http.post(f"{BASE}/user", content="username=a&password=b")
    assert response.status_code == 404
