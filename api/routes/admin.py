"""Admin routes: ban/unban users, the extra broker ACL rules, a user's effective ACL, the
server's figures (`GET /api/admin/stats`, also the source of the gauges on /metrics).

Every route checks that the caller is an admin before it reads a body or a path parameter.
"""

from __future__ import annotations

import time

from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import admin
from actions.stats import figures
from api.auth import Caller, authenticate, state_of
from api.envelope import ok
from api.middleware import STARTED
from api.schemas import RuleBody, parse_body
from contract.stats import AdminStats

# The embedded broker's gauge (broker/embedded/observe.py), present only in the process that
# runs that broker: read through the registry, so the API imports nothing of the broker's.
CONNECTED_GAUGE = "mqim_mqtt_connected_clients"


async def require_admin(request: Request) -> Caller:
    caller = await authenticate(request)
    await admin.check_admin(caller.user_id)
    return caller


async def ban(request: Request) -> JSONResponse:
    caller = await require_admin(request)
    return ok(await admin.ban(state_of(request).ctx, caller.user_id,
                              request.path_params["user_id"]))


async def unban(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok(await admin.unban(state_of(request).ctx, request.path_params["user_id"]))


async def rules(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok(await admin.rules())


async def add(request: Request) -> JSONResponse:
    caller = await require_admin(request)
    body = await parse_body(request, RuleBody)
    return ok(await admin.add(state_of(request).ctx, caller.user_id, topic=body.topic,
                              access=body.access, user_id=body.user_id), status=201)


async def remove(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok(await admin.remove(state_of(request).ctx, request.path_params["rule_id"]))


async def user_acl(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok(await admin.user_acl(state_of(request).ctx.topics, request.path_params["user_id"]))


async def stats_now() -> AdminStats:
    connected = REGISTRY.get_sample_value(CONNECTED_GAUGE)
    return await figures(None if connected is None else int(connected),
                         int(time.monotonic() - STARTED))


async def stats(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok(await stats_now())


routes = [
    Route("/api/admin/stats", stats, methods=["GET"]),
    Route("/api/admin/users/{user_id:id}/ban", ban, methods=["POST"]),
    Route("/api/admin/users/{user_id:id}/ban", unban, methods=["DELETE"]),
    Route("/api/admin/users/{user_id:id}/acl", user_acl, methods=["GET"]),
    Route("/api/admin/acl/rules", rules, methods=["GET"]),
    Route("/api/admin/acl/rules", add, methods=["POST"]),
    # `{rule_id:num}`: any other id matches no route, so it is a 404 like a missing rule.
    Route("/api/admin/acl/rules/{rule_id:num}", remove, methods=["DELETE"]),
]
