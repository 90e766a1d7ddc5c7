"""The running systems the conformance tables are asked of, and how state is put into them.

One `mqim serve` (embedded broker, the HTTP auth hooks switched on) and one Mosquitto with mqim's
plugin, both verifying the same JWT secret. State reaches mqim's database through its own HTTP
API (register, group threads, logout, admin bans and rules), and reaches the plugin through
`broker.mosquitto.control`, as mqim's services send it.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import aiomqtt
import httpx
from paho.mqtt.reasoncodes import ReasonCode
from tortoise.context import TortoiseContext

from broker.link.client import derive_service_password
from broker.mosquitto.control import MosquittoControl
from config import Settings
from tests.helpers import Account, create_group, register, unique_id
from tests.stacks import settings_env

HOOK_SECRET_HEADER = "X-Mqim-Hook-Secret"
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code


def reason_code(value: int | ReasonCode | None) -> int:
    """A SUBACK/CONNACK code as an int, whether aiomqtt gives an int or a paho ReasonCode."""
    return value.value if isinstance(value, ReasonCode) else int(value or 0)


@dataclass(frozen=True)
class World:
    settings: Settings
    hook_secret: str
    http: httpx.AsyncClient
    mosquitto_port: int
    control: MosquittoControl
    admin: Account
    # The account whose user id is the topic prefix (registered once: ids are unique).
    prefix_account: Account
    # This process's connection to mqim's database: `with world.orm:` around model calls.
    orm: TortoiseContext

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    @property
    def service_user(self) -> str:
        return self.settings.bridge_username

    @property
    def service_password(self) -> str:
        return derive_service_password(self.settings.jwt_secret, self.service_user)

    @property
    def hook_headers(self) -> dict[str, str]:
        return {HOOK_SECRET_HEADER: self.hook_secret}

    def mqtt_client(self, username: str, password: str, *, client_id: str | None = None,
                    ) -> aiomqtt.Client:
        return mqtt_client(self.mosquitto_port, username, password, client_id=client_id)

    def service_client(self) -> aiomqtt.Client:
        return self.mqtt_client(self.service_user, self.service_password)

    # mqim's state, through its HTTP API -----------------------------------------------------

    async def new_account(self, hint: str) -> Account:
        return await register(self.http, unique_id(hint[:1]))

    async def login_elsewhere(self, account: Account) -> str:
        """A second login session of the account (another platform); its access token."""
        response = await self.http.post("/api/auth/login", json={
            "login": account.user_id, "password": account.password, "platform": "ios"})
        assert response.status_code == 200, response.text
        token: str = response.json()["data"]["token"]
        return token

    async def logout(self, token: str) -> None:
        response = await self.http.post("/api/auth/logout",
                                        headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text

    async def ban(self, user_id: str) -> None:
        response = await self.http.post(f"/api/admin/users/{user_id}/ban",
                                         headers=self.admin.auth)
        assert response.status_code == 200, response.text

    async def group(self, owner: Account, *others: Account) -> str:
        return await create_group(self.http, owner, *others)

    async def set_recv_msg_opt(self, member: Account, thread_id: str, value: int) -> None:
        response = await self.http.patch(f"/api/threads/{thread_id}/settings",
                                         headers=member.auth, json={"recv_msg_opt": value})
        response.raise_for_status()

    async def dissolve(self, owner: Account, thread_id: str) -> None:
        (await self.http.delete(f"/api/threads/{thread_id}", headers=owner.auth)).raise_for_status()

    async def add_rule(self, topic: str, access: str, user_id: str | None) -> int:
        body: dict[str, Any] = {"topic": topic, "access": access}
        if user_id is not None:
            body["user_id"] = user_id
        response = await self.http.post("/api/admin/acl/rules", json=body,
                                        headers=self.admin.auth)
        assert response.status_code == 201, response.text
        rule_id: int = response.json()["data"]["id"]
        return rule_id

    async def try_add_rule(self, topic: str) -> bool:
        """Whether mqim stores a rule for everyone on `topic` (it is removed again)."""
        response = await self.http.post("/api/admin/acl/rules", json={
            "topic": topic, "access": "read"}, headers=self.admin.auth)
        if response.status_code == 201:
            await self.delete_rule(response.json()["data"]["id"])
            return True
        assert response.status_code == 400, response.text
        return False

    async def delete_rule(self, rule_id: int) -> None:
        response = await self.http.delete(f"/api/admin/acl/rules/{rule_id}",
                                          headers=self.admin.auth)
        assert response.is_success, response.text


def mqtt_client(port: int, username: str, password: str, *, client_id: str | None = None,
                ) -> aiomqtt.Client:
    """An MQTT 5 client of the Mosquitto on `port` (reason codes say why it was refused)."""
    return aiomqtt.Client(
        "127.0.0.1", port, username=username, password=password,
        identifier=client_id or f"{username}:{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5, timeout=5,
    )


async def grant_admin(settings: Settings, account: Account) -> None:
    """`mqim admin grant`, the only way to make an admin."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mqim", "admin", "grant", account.user_id,
        env=settings_env(settings), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
