"""The current presence of a user, for those allowed to see it (friends, co-members, self)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions.presence import presence_of
from api.auth import authenticate
from api.envelope import ok


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await presence_of(caller.user_id, request.path_params["user_id"]))


routes = [Route("/api/users/{user_id:id}/presence", show, methods=["GET"])]
