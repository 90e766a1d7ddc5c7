"""Threads and their members: create, add, remove/leave. Parse -> the use cases of
actions/membership.py -> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import membership
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import AddMembersBody, CreateThreadBody, parse_body


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, CreateThreadBody)
    result = await membership.create_thread(state_of(request).ctx, caller.user_id, body.type,
                                            body.user_ids, body.name)
    return ok(result, status=201 if result.created else 200)


async def add(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, AddMembersBody)
    return ok(await membership.add_members(state_of(request).ctx, caller.user_id,
                                           request.path_params["thread_id"], body.user_ids))


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await membership.remove_member(state_of(request).ctx, caller.user_id,
                                             request.path_params["thread_id"],
                                             request.path_params["user_id"]))


routes = [
    Route("/api/threads", create, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/members", add, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/members/{user_id:id}", remove, methods=["DELETE"]),
]
