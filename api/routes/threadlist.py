"""What a member sees of their threads: the list and one thread. Parse -> actions/threadviews.py
-> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import threadviews
from api.auth import authenticate
from api.envelope import ok


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.threads_of(caller.user_id))


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await threadviews.thread_info(caller.user_id, request.path_params["thread_id"]))


routes = [
    Route("/api/threads", index, methods=["GET"]),
    Route("/api/threads/{thread_id:id}", show, methods=["GET"]),
]
