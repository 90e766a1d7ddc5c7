"""Friend groups (the seeds' 分组): the caller's own named lists of friends. Nothing is published:
a group is private to its owner."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate
from api.envelope import ok
from api.schemas import FriendGroupBody, FriendGroupMembersBody, parse_body
from models.friendgroup import (
    add_group_members,
    create_group,
    delete_group,
    get_group,
    list_group_members,
    list_groups,
    remove_group_member,
    rename_group,
)


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await list_groups(caller.user_id))


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupBody)
    return ok(await create_group(caller.user_id, body.name), status=201)


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await get_group(caller.user_id, request.path_params["group_id"]))


async def rename(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupBody)
    return ok(await rename_group(caller.user_id, request.path_params["group_id"], body.name))


async def delete(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    group_id: int = request.path_params["group_id"]
    await delete_group(caller.user_id, group_id)
    return ok({"id": group_id})


async def members(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await list_group_members(caller.user_id, request.path_params["group_id"]))


async def add(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupMembersBody)
    group_id: int = request.path_params["group_id"]
    added = await add_group_members(caller.user_id, group_id, body.user_ids)
    return ok({"group_id": group_id, "added": added})


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    group_id: int = request.path_params["group_id"]
    user_id: str = request.path_params["user_id"]
    await remove_group_member(caller.user_id, group_id, user_id)
    return ok({"group_id": group_id, "removed": [user_id]})


# `{group_id:int}`: any other id matches no route, so it is a 404 like a missing group.
routes = [
    Route("/api/friends/groups", index, methods=["GET"]),
    Route("/api/friends/groups", create, methods=["POST"]),
    Route("/api/friends/groups/{group_id:num}", show, methods=["GET"]),
    Route("/api/friends/groups/{group_id:num}", rename, methods=["PATCH"]),
    Route("/api/friends/groups/{group_id:num}", delete, methods=["DELETE"]),
    Route("/api/friends/groups/{group_id:num}/members", members, methods=["GET"]),
    Route("/api/friends/groups/{group_id:num}/members", add, methods=["POST"]),
    Route("/api/friends/groups/{group_id:num}/members/{user_id:id}", remove, methods=["DELETE"]),
]
