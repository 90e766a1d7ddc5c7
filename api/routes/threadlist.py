"""What a member sees of their threads, and their own settings of each: the list (a page at a
time: `?limit=` and `?after=<thread_id>`), one thread, its members, the direct thread with
someone, PATCH …/settings and accepting a message request.
Parse -> actions/threadviews.py -> serialise."""

from __future__ import annotations

from typing import Any

from pydantic import StrictBool, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import threadviews
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import Body, parse_body, query_int
from contract.errors import InvalidParameterError
from models.threadlist import PAGE_DEFAULT, PAGE_MAX, PAGE_MIN, ListQuery


class SettingsBody(Body):
    """PATCH /api/threads/{id}/settings: an absent field stays; `muted_until` null unmutes."""

    pinned: StrictBool | None = None
    archived: StrictBool | None = None
    marked_unread: StrictBool | None = None
    muted_until: StrictStr | None = None
    recv_msg_opt: StrictInt | None = None

    def changes(self) -> dict[str, Any]:
        """The settings the client sent, with their values (null included: the model decides)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None or value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise InvalidParameterError(f"{name} must be true or false")


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    limit = query_int(request, "limit", default=PAGE_DEFAULT, minimum=PAGE_MIN,
                      maximum=PAGE_MAX)
    query = ListQuery(
        archived=_flag(request, "archived"), include_left=_flag(request, "include_left"),
        unread=_flag(request, "unread"), requests=_flag(request, "requests"),
        q=request.query_params.get("q"), limit=limit or PAGE_DEFAULT,
        after=request.query_params.get("after") or None,
    )
    return ok(await threadviews.threads_of(caller.user_id, query))


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.thread_info(caller.user_id, request.path_params["thread_id"]))


async def direct(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.direct_thread(caller.user_id, request.path_params["user_id"]))


async def members(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.members_of(caller.user_id, request.path_params["thread_id"]))


async def settings(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, SettingsBody)
    return ok(await threadviews.change_settings(state_of(request).ctx, caller.user_id,
                                                request.path_params["thread_id"],
                                                body.changes()))


async def accept(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.accept_request(caller.user_id,
                                               request.path_params["thread_id"]))


routes = [
    Route("/api/threads", index, methods=["GET"]),
    Route("/api/threads/direct/{user_id:id}", direct, methods=["GET"]),
    Route("/api/threads/{thread_id:id}", show, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/members", members, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/settings", settings, methods=["PATCH"]),
    Route("/api/threads/{thread_id:id}/accept", accept, methods=["POST"]),
]
