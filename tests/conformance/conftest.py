"""The world of the conformance tables, for the whole package: `mqim serve` with its HTTP auth
hooks switched on, a Mosquitto with mqim's plugin verifying the same JWT secret (synced, ready),
and this process's own connection to mqim's database for the Python verifier.

The ORM connection is a context of its own, not Tortoise's global one: another in-process mqim
(tests/api/test_mqtt_hooks.py) may hold or have held that in the same test run.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiomqtt
import httpx
import pytest
from tortoise.context import TortoiseContext

from broker.link.client import derive_service_password
from broker.mosquitto.control import MosquittoControl
from models.db import tortoise_config
from tests.conformance.world import World, grant_admin, mqtt_client
from tests.helpers import make_settings, register
from tests.stacks import mosquitto_for, serve_process


@pytest.fixture(scope="package")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("conformance")
    hook_secret = "hook-" + secrets.token_urlsafe(24)
    settings = make_settings(workdir, mqtt_hook_secret=hook_secret)
    service = settings.bridge_username
    password = derive_service_password(settings.jwt_secret, service)
    orm = TortoiseContext()
    async with (
        serve_process(settings, workdir / "mqim.log"),
        httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10) as http,
        mosquitto_for(settings, workdir) as (port, _ws_port),
    ):
        def service_client() -> aiomqtt.Client:
            return mqtt_client(port, service, password)

        with orm:  # the models find their connection through the current context
            await orm.init(config=tortoise_config(settings.db_url))
        try:
            admin = await register(http)
            await grant_admin(settings, admin)
            prefix_account = await register(http, settings.topic_prefix)
            async with MosquittoControl(service_client) as control:
                await control.sync({})
                yield World(settings, hook_secret, http, port, control, admin, prefix_account,
                            orm)
        finally:
            await orm.close_connections()
