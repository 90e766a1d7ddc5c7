"""`create_app(settings)`: the Starlette application, its lifespan and its one error handler."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from actions.context import Context
from api.envelope import (
    handle_http_error,
    handle_mqim_error,
    handle_refused_value,
    handle_unexpected,
)
from api.mailer import build_mailer
from api.middleware import build_middleware
from api.routes import (
    accounts,
    admin,
    apidocs,
    bots,
    friends,
    governance,
    health,
    history,
    images,
    invitations,
    me,
    messages,
    mqtt_hooks,
    mqtt_hooks_rabbitmq,
    msgactions,
    msgsearch,
    polls,
    presence,
    push,
    receipts,
    rooms,
    threadlist,
    threads,
    uploads,
    users,
    webapp,
    webhooks,
)
from api.state import ApiState
from broker.acl import AccessSync, Directory
from broker.link.client import ServiceConnector
from broker.link.publisher import EventPublisher, ServicePublisher
from config import Settings
from contract.errors import MqimError
from contract.topics import TopicScheme
from models.db import REFUSED_VALUE, open_database
from models.ratelimit import RateLimits
from storage import open_storage


def create_app(
    settings: Settings,
    *,
    directory: Directory,
    access: AccessSync,
    publisher: EventPublisher | None = None,
    own_database: bool = True,
    limits: RateLimits | None = None,
) -> Starlette:
    """The HTTP API. With `own_database`, its lifespan opens the ORM; without `publisher`, it
    opens its own MQTT connection to publish events; without `limits`, it builds its own (pass
    the bridge's, so that sends over MQTT and HTTP share one budget per process)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            if own_database:
                await stack.enter_async_context(open_database(settings))
            events = publisher
            if events is None:
                client_id = f"{settings.bridge_username}:api-{secrets.token_hex(4)}"
                events = await stack.enter_async_context(
                    # Lazy on a hooks broker: its login is asked of this API's own hooks.
                    ServicePublisher(ServiceConnector(settings, client_id),
                                     lazy=settings.broker_kind == "hooks")
                )
            ctx = Context(settings, events, access, TopicScheme(settings.topic_prefix),
                          RateLimits.from_settings(settings) if limits is None else limits,
                          open_storage(settings))
            state = ApiState(ctx, directory, build_mailer(settings))
            yield {"api": state}

    return Starlette(
        routes=[*accounts.routes, *me.routes, *threadlist.routes, *threads.routes,
                *governance.routes, *invitations.routes, *rooms.routes, *msgsearch.routes,
                *history.routes, *messages.routes, *msgactions.routes, *polls.routes,
                *images.routes, *receipts.routes, *push.routes, *webhooks.routes, *bots.routes,
                *admin.routes, *uploads.routes,
                *users.routes, *friends.routes, *mqtt_hooks.routes,
                *mqtt_hooks_rabbitmq.routes, *presence.routes,
                *health.routes, *apidocs.routes, *webapp.routes],
        lifespan=lifespan,
        middleware=build_middleware(settings),
        exception_handlers={
            MqimError: handle_mqim_error,
            REFUSED_VALUE: handle_refused_value,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
    )
