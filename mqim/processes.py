"""The single-part processes of `mqim api`, `mqim bridge` and `mqim broker`, and the access
wiring they share with `mqim serve`."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

import uvicorn
from prometheus_client import start_http_server

from actions.reach import run_reach
from api.app import create_app
from bridge.amqp_source import AmqpUplinks
from bridge.runner import run_bridge
from broker.acl import AccessSync, ExtraRule
from broker.embedded.broker import MqimBroker
from broker.embedded.launch import embedded_broker
from broker.link.client import ServiceConnector, service_client
from broker.link.publisher import ServicePublisher
from broker.mosquitto.control import ControlError, MosquittoControl
from config import Settings
from models.db import advisory_lock, open_database
from mqim.acl_sync import sync_mosquitto
from mqim.directory import ModelDirectory
from mqim.ports import ensure_free
from mqim.rabbitmq_sync import rabbitmq_access

logger = logging.getLogger(__name__)

ACL_SYNC_LOCK = 0x6D71696E  # "mqin": names the broker-ACL sync among advisory locks
REACH_LOCK = 0x6D71696F  # "mqio": the one push and webhook worker of a database


class EmbeddedAccess:
    """AccessSync of `mqim serve` with the embedded broker: the directory's caches follow
    membership and rule changes; ended sessions and bans close live connections at once."""

    def __init__(self, directory: ModelDirectory, broker: MqimBroker) -> None:
        self._directory = directory
        self._broker = broker

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        await self._directory.membership_changed(thread_id, member_ids)

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        await self._directory.session_ended(user_id, session_id, until)
        _ = await self._broker.kick_session(session_id)

    async def user_banned(self, user_id: str, banned: bool) -> None:
        await self._directory.user_banned(user_id, banned)
        if banned:
            _ = await self._broker.kick_user(user_id)

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None:
        await self._directory.rules_changed(rules)


def pushes_to_mosquitto(settings: Settings) -> bool:
    return not settings.embedded_broker and settings.broker_kind == "mosquitto"


@asynccontextmanager
async def mosquitto_control(settings: Settings, name: str) -> AsyncIterator[MosquittoControl]:
    client_id = f"{settings.bridge_username}:{name}-{secrets.token_hex(3)}"
    async with MosquittoControl(lambda: service_client(settings, client_id)) as control:
        yield control


class ReconnectingControl:
    """The API's AccessSync towards Mosquitto's plugin, surviving broker restarts.

    A control connection lost (the broker restarted) is re-opened on the next change, which is
    then sent again. The restarted plugin starts empty; the bridge workers re-sync it, and this
    change, sent live, wins over the sync's older data (see broker/mosquitto/control.py).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stack = AsyncExitStack()
        self._control: MosquittoControl | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ReconnectingControl:
        await self._reopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _reopen(self) -> MosquittoControl:
        await self._stack.aclose()
        self._stack = AsyncExitStack()
        self._control = await self._stack.enter_async_context(
            mosquitto_control(self._settings, "api"))
        return self._control

    async def _send(self, call: Callable[[MosquittoControl], Awaitable[None]]) -> None:
        control = self._control
        if control is not None:
            try:
                await call(control)
                return
            except ControlError as exc:
                logger.warning("control connection failed (%s); reconnecting", exc)
        async with self._lock:
            if self._control is control:  # nobody reconnected meanwhile
                control = await self._reopen()
            else:
                control = self._control
        assert control is not None  # noqa: S101  # set by _reopen
        await call(control)

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        await self._send(lambda c: c.membership_changed(thread_id, member_ids))

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        await self._send(lambda c: c.session_ended(user_id, session_id, until))

    async def user_banned(self, user_id: str, banned: bool) -> None:
        await self._send(lambda c: c.user_banned(user_id, banned))

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None:
        await self._send(lambda c: c.rules_changed(rules))


@asynccontextmanager
async def access_sync(settings: Settings, directory: ModelDirectory) -> AsyncIterator[AccessSync]:
    """Where committed access changes go: the directory's cache, Mosquitto's plugin, or with
    RabbitMQ its management API too (live sessions lose what was taken away)."""
    if settings.rabbitmq_management_url:
        async with rabbitmq_access(settings, directory,
                                   settings.rabbitmq_management_url) as access:
            yield access
        return
    if not pushes_to_mosquitto(settings):
        yield directory
        return
    async with ReconnectingControl(settings) as control:
        yield control


def bridge_sync(settings: Settings) -> Callable[[], Awaitable[None]]:
    """The bridge's on_ready: with Mosquitto, resend the whole access state after each connect."""

    async def on_ready() -> None:
        if pushes_to_mosquitto(settings):
            # Workers that (re)connect together take turns; the later ones find it ready.
            async with advisory_lock(settings.db_url, ACL_SYNC_LOCK), mosquitto_control(
                settings, "sync"
            ) as control:
                await sync_mosquitto(control, settings)

    return on_ready


async def run_api(settings: Settings) -> None:
    ensure_free(settings.http, "HTTP", "--http or MQIM_HTTP")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(settings))
        # Several API replicas may answer one broker: no membership cache across processes.
        directory = ModelDirectory(settings.jwt_secret, cache=False)
        access = await stack.enter_async_context(access_sync(settings, directory))
        app = create_app(settings, directory=directory, access=access, own_database=False)
        server = uvicorn.Server(uvicorn.Config(
            app, host=settings.http.host, port=settings.http.port, log_config=None,
            access_log=False,
        ))
        logger.info("HTTP API listening on http://%s", settings.http)
        await server.serve()


@contextmanager
def metrics_listener(settings: Settings) -> Iterator[None]:
    """Prometheus /metrics on MQIM_METRICS for the processes without the HTTP API (which serves
    it on its own port). prometheus_client's server runs in a thread of its own, so a scrape
    is answered even while the event loop is busy with a batch."""
    address = settings.metrics_address()
    if address is None:
        yield
        return
    ensure_free(address, "metrics", "--metrics or MQIM_METRICS")
    server, thread = start_http_server(address.port, address.host)
    logger.info("Prometheus metrics on http://%s/metrics", address)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def run_bridge_worker(settings: Settings, worker: str) -> None:
    with metrics_listener(settings):
        await _bridge_worker(settings, worker)


async def _bridge_worker(settings: Settings, worker: str) -> None:
    async with open_database(settings), access_sync(
        settings, ModelDirectory(settings.jwt_secret, cache=False)
    ) as access:
        client_id = f"{settings.bridge_username}:bridge-{worker}"
        if settings.rabbitmq_amqp_url:
            # RabbitMQ has no shared subscriptions: the workers are competing consumers of the
            # uplink quorum queue over AMQP, and publish events over MQTT (a fresh client id
            # each start: RabbitMQ keeps an old one taken while the node it lived on is down).
            client_id = f"{client_id}-{secrets.token_hex(3)}"
            async with ServicePublisher(ServiceConnector(settings, client_id)) as events, \
                    AmqpUplinks(settings.rabbitmq_amqp_url, settings.topic_prefix) as uplinks:
                await run_bridge(settings, access=access, client_id=client_id,
                                 publisher=events, uplinks=uplinks)
            return
        await run_bridge(settings, access=access, client_id=client_id,
                         on_ready=bridge_sync(settings))


async def run_push_worker(settings: Settings) -> None:
    """The push and webhook worker alone (`mqim push`), for deployments that run `mqim api` and
    `mqim bridge` apart: one per database (a second waits for the first's lock)."""
    with metrics_listener(settings):
        async with open_database(settings), advisory_lock(settings.db_url, REACH_LOCK):
            await run_reach(settings)


async def run_embedded_broker(settings: Settings) -> None:
    """The embedded broker alone. Its membership checks read the database each time, because
    the API that changes memberships runs in another process."""
    ensure_free(settings.mqtt, "MQTT", "--mqtt or MQIM_MQTT")
    with metrics_listener(settings):
        async with open_database(settings), embedded_broker(
            settings, ModelDirectory(settings.jwt_secret, cache=False)
        ):
            await asyncio.Event().wait()
