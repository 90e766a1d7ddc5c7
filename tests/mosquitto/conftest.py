"""A real Mosquitto with mqim's plugin for the session: built from source, configured from the
repository's own `mosquitto.conf` on free loopback ports, and a control client that has synced."""

from __future__ import annotations

import os
import pwd
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from broker.link.client import derive_service_password
from broker.mosquitto.control import MosquittoControl
from broker.mosquitto.plugin import build_plugin, render_mosquitto_conf, running_mosquitto
from models.tokens import issue_access_token
from tests.helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_USER = "mqim-bridge"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class MosquittoBroker:
    host: str
    port: int
    ws_port: int
    secret: str
    data_dir: Path
    log_path: Path
    prefix: str = "im"
    service_user: str = SERVICE_USER

    @property
    def service_password(self) -> str:
        return derive_service_password(self.secret, self.service_user)

    def token(self, user_id: str, session_id: str | None = None, ttl: int = 900) -> str:
        return issue_access_token(self.secret, user_id, session_id or uuid.uuid4().hex, ttl)

    def user_client(
        self,
        user_id: str,
        token: str | None = None,
        *,
        client_id: str | None = None,
        v5: bool = False,
        timeout: float = 5,
    ) -> aiomqtt.Client:
        """A client of `user_id` (a fresh token unless given) with a client id of its own."""
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=client_id or f"{user_id}:{uuid.uuid4().hex[:8]}",
            username=user_id,
            password=token if token is not None else self.token(user_id),
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            timeout=timeout,
        )

    def service_client(self, *, password: str | None = None, v5: bool = False) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"{self.service_user}:{uuid.uuid4().hex[:8]}",
            username=self.service_user,
            password=password if password is not None else self.service_password,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            timeout=5,
        )


@pytest.fixture(scope="session")
async def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MosquittoBroker]:
    workdir = tmp_path_factory.mktemp("mosquitto")
    plugin = build_plugin(workdir / "plugin")
    secret = secrets.token_urlsafe(48)
    secret_file = workdir / "jwt-secret"
    secret_file.write_text(secret + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    data_dir = workdir / "data"
    data_dir.mkdir()
    port, ws_port = free_port(), free_port()
    conf = render_mosquitto_conf(
        (REPO_ROOT / "mosquitto.conf").read_text(encoding="utf-8"),
        tcp_port=port, ws_port=ws_port, data_dir=data_dir, plugin_path=plugin,
        jwt_secret_file=secret_file, topic_prefix="im", service_users=[SERVICE_USER],
        user=pwd.getpwuid(os.geteuid()).pw_name,
    )
    conf_path = workdir / "mosquitto.conf"
    conf_path.write_text(conf, encoding="utf-8")
    log_path = workdir / "mosquitto.log"
    async with running_mosquitto(conf_path, host=HOST, port=port, log_path=log_path):
        yield MosquittoBroker(HOST, port, ws_port, secret, data_dir, log_path)


@pytest.fixture(scope="session")
async def control(mosquitto: MosquittoBroker) -> AsyncIterator[MosquittoControl]:
    """The plugin's control client, after a first (empty) sync: users may log in."""
    async with MosquittoControl(mosquitto.service_client) as control:
        await control.sync({})
        yield control
