"""Users as others see them: search, and one user as the caller sees them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import users
from api.auth import authenticate
from api.envelope import ok
from api.schemas import query_int
from models.search import PAGE_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX


async def search(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    page = query_int(request, "page", default=1, minimum=1, maximum=PAGE_MAX)
    page_size = query_int(request, "page_size", default=PAGE_SIZE_DEFAULT, minimum=1,
                          maximum=PAGE_SIZE_MAX)
    return ok(await users.search(caller.user_id, request.query_params.get("q", ""),
                                 page=page or 1, page_size=page_size or PAGE_SIZE_DEFAULT))


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await users.view(caller.user_id, request.path_params["user_id"]))


routes = [
    Route("/api/users", search, methods=["GET"]),
    Route("/api/users/{user_id:id}", show, methods=["GET"]),
]
