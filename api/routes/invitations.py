"""A thread's invitations and join requests, for its owner and admins: list, approve, reject.
Parse -> actions/membership.py -> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from actions import membership
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import query_int
from models.membership import INVITATIONS_LIMIT_MAX

LIMIT_DEFAULT = 50


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await membership.invitations_of(
        caller.user_id, request.path_params["thread_id"],
        request.query_params.get("status") or None,
        query_int(request, "limit", default=LIMIT_DEFAULT, minimum=1,
                  maximum=INVITATIONS_LIMIT_MAX) or LIMIT_DEFAULT,
        query_int(request, "before_id", minimum=1)))


async def approve(request: Request) -> JSONResponse:
    return await _decide(request, approve=True)


async def reject(request: Request) -> JSONResponse:
    return await _decide(request, approve=False)


async def _decide(request: Request, *, approve: bool) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await membership.decide_invitation(
        state_of(request).ctx, caller.user_id, request.path_params["thread_id"],
        request.path_params["invitation_id"], approve))


routes: list[BaseRoute] = [
    Route("/api/threads/{thread_id:id}/invitations", index, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/invitations/{invitation_id:num}/approve", approve,
          methods=["POST"]),
    Route("/api/threads/{thread_id:id}/invitations/{invitation_id:num}/reject", reject,
          methods=["POST"]),
]
