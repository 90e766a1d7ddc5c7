"""Outgoing webhook routes (docs/webhooks.md): create, list and delete hooks, a hook's
deliveries and the replay of its failed ones. authenticate -> parse -> actions/webhooks.py."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import webhooks
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import parse_body, query_int
from contract.webhooks import DELIVERIES_LIMIT_DEFAULT, DELIVERIES_LIMIT_MAX, CreateWebhookBody


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, CreateWebhookBody)
    return ok(await webhooks.create_webhook(state_of(request).ctx.settings, caller.user_id,
                                            body), status=201)


async def list_hooks(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await webhooks.list_webhooks(caller.user_id))


async def delete(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await webhooks.delete_webhook(caller.user_id, request.path_params["hook_id"]))


async def deliveries(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    limit = query_int(request, "limit", default=DELIVERIES_LIMIT_DEFAULT, minimum=1,
                      maximum=DELIVERIES_LIMIT_MAX)
    return ok(await webhooks.list_deliveries(
        caller.user_id, request.path_params["hook_id"],
        request.query_params.get("status") or None, limit or DELIVERIES_LIMIT_DEFAULT))


async def replay(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await webhooks.replay(caller.user_id, request.path_params["hook_id"]))


routes = [
    Route("/api/webhooks", create, methods=["POST"]),
    Route("/api/webhooks", list_hooks, methods=["GET"]),
    Route("/api/webhooks/{hook_id:num}", delete, methods=["DELETE"]),
    Route("/api/webhooks/{hook_id:num}/deliveries", deliveries, methods=["GET"]),
    Route("/api/webhooks/{hook_id:num}/replay", replay, methods=["POST"]),
]
