"""The current presence of a user, for those allowed to see it (friends, co-members, self)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate
from api.envelope import ok
from models.presence import get_presence
from models.user import get_user


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    user_id = request.path_params["user_id"]
    _ = await get_user(user_id)
    state = await get_presence(caller.user_id, user_id)
    event = state.event()
    return ok({"user_id": user_id, "status": event["status"],
               "last_seen_at": event["last_seen_at"]})


routes = [Route("/api/users/{user_id:id}/presence", show, methods=["GET"])]
