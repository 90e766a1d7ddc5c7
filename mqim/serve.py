"""`mqim serve`: the embedded broker (unless MQIM_BROKER_URL names another), the bridge and the
HTTP API in one asyncio process.

`running_server(settings)` is what the CLI runs and what the end-to-end tests start: one path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from actions.reach import run_reach
from api.app import create_app
from bridge.runner import run_bridge
from broker.acl import AccessSync
from broker.embedded.launch import BrokerPublisher, embedded_broker
from broker.link.publisher import EventPublisher
from broker.link.uplinks import UplinkSource
from config import Settings
from models.db import describe_database, open_database
from models.ratelimit import RateLimits
from mqim.directory import ModelDirectory
from mqim.ports import ensure_free
from mqim.processes import EmbeddedAccess, access_sync, bridge_sync

logger = logging.getLogger(__name__)

BRIDGE_READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunningServer:
    settings: Settings
    app: Starlette
    http_task: asyncio.Task[None]


@asynccontextmanager
async def _background(coro_name: str, task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.debug("%s stopped", coro_name)


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """Start everything, yield once all listeners accept, and stop it all on exit."""
    ensure_free(settings.http, "HTTP", "--http or MQIM_HTTP")
    if settings.embedded_broker:
        ensure_free(settings.mqtt, "MQTT", "--mqtt or MQIM_MQTT")
        if settings.mqtt_ws is not None:
            ensure_free(settings.mqtt_ws, "MQTT over WebSocket", "--mqtt-ws or MQIM_MQTT_WS")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(settings))
        directory = ModelDirectory(settings.jwt_secret, cache=settings.embedded_broker)
        access: AccessSync
        publisher: EventPublisher | None = None  # None: each part publishes over MQTT
        uplinks: UplinkSource | None = None  # None: the bridge subscribes over MQTT
        if settings.embedded_broker:
            broker = await stack.enter_async_context(embedded_broker(settings, directory))
            access = EmbeddedAccess(directory, broker)
            publisher = BrokerPublisher(broker)
            uplinks = broker.uplink_queue()
        else:
            access = await stack.enter_async_context(access_sync(settings, directory))

        ready = asyncio.Event()
        sync_acl = bridge_sync(settings)

        async def bridge_ready() -> None:
            await sync_acl()
            ready.set()

        # One budget per user for sends over MQTT and HTTP alike.
        limits = RateLimits.from_settings(settings)
        bridge = asyncio.create_task(
            run_bridge(settings, access=access, on_ready=bridge_ready, publisher=publisher,
                       uplinks=uplinks, limits=limits),
            name="bridge")
        await stack.enter_async_context(_background("bridge", bridge))
        async with asyncio.timeout(BRIDGE_READY_TIMEOUT):
            await ready.wait()
        if settings.reach:
            reach = asyncio.create_task(run_reach(settings), name="reach")
            await stack.enter_async_context(_background("push and webhook worker", reach))

        app = create_app(settings, directory=directory, access=access, publisher=publisher,
                         own_database=False, limits=limits)
        server = uvicorn.Server(uvicorn.Config(
            app, host=settings.http.host, port=settings.http.port, log_config=None,
            lifespan="on", access_log=False,
        ))
        http = asyncio.create_task(server.serve(), name="http")

        async def stop_http() -> None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await http

        stack.push_async_callback(stop_http)
        while not server.started:
            if http.done():
                http.result()  # raises what stopped it
                raise RuntimeError("HTTP server stopped during startup")
            await asyncio.sleep(0.02)
        logger.info("HTTP API listening on http://%s", settings.http)
        logger.info("data in %s (database %s)", settings.data_dir.resolve(),
                    describe_database(settings.db_url))
        yield RunningServer(settings, app, http)
