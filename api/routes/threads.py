"""Threads and their members: create (direct, group, room), add, remove/leave, join. Parse ->
the use cases of actions/membership.py -> serialise."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictFloat, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import membership
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import AddMembersBody, Body, parse_body


class GeoBody(Body):
    lat: StrictFloat | StrictInt
    lng: StrictFloat | StrictInt


class NewThreadBody(Body):
    """POST /api/threads. `capacity` and `geo` are for rooms only (checked by the model)."""

    type: Literal["direct", "group", "room"]
    user_ids: list[StrictStr] = Field(default_factory=list, max_length=5000)
    name: StrictStr | None = None
    capacity: StrictInt | None = None
    geo: GeoBody | None = None


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, NewThreadBody)
    result = await membership.create_thread(
        state_of(request).ctx, caller.user_id, body.type, body.user_ids, body.name,
        capacity=body.capacity,
        place=(float(body.geo.lat), float(body.geo.lng)) if body.geo else None)
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


async def join(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await membership.join_thread(state_of(request).ctx, caller.user_id,
                                           request.path_params["thread_id"]))


routes = [
    Route("/api/threads", create, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/members", add, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/members/{user_id:id}", remove, methods=["DELETE"]),
    Route("/api/threads/{thread_id:id}/join", join, methods=["POST"]),
]
