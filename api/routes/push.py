"""Push targets and the VAPID public key (docs/push.md): authenticate → parse → actions/push.py
→ serialise. A target belongs to the caller's login session, the one their token is of."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import push
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import parse_body
from contract.push import PushTargetBody


async def add(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, PushTargetBody)
    return ok(await push.add_target(state_of(request).ctx.settings, caller.user_id,
                                    caller.session_id, body), status=201)


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await push.list_targets(caller.user_id))


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    await push.delete_target(caller.user_id, request.path_params["target_id"])
    return ok()


async def vapid_key(request: Request) -> JSONResponse:
    return ok(await push.vapid_key(state_of(request).ctx.settings))


# `{target_id:num}`: any other id matches no route, so it is a 404 like another's target.
routes = [
    Route("/api/me/push-targets", add, methods=["POST"]),
    Route("/api/me/push-targets", index, methods=["GET"]),
    Route("/api/me/push-targets/{target_id:num}", remove, methods=["DELETE"]),
    Route("/api/push/vapid-public-key", vapid_key, methods=["GET"]),
]
