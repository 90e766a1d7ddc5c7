"""Friend groups (the seeds' 分组), the caller's own named lists of friends: parse →
actions/friendgroups.py → serialise. Nothing is published: a group is private to its owner."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import friendgroups
from api.auth import authenticate
from api.envelope import ok
from api.schemas import FriendGroupBody, FriendGroupMembersBody, parse_body


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friendgroups.groups_of(caller.user_id))


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupBody)
    return ok(await friendgroups.create_group(caller.user_id, body.name), status=201)


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friendgroups.group_detail(caller.user_id, request.path_params["group_id"]))


async def rename(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupBody)
    return ok(await friendgroups.rename_group(caller.user_id, request.path_params["group_id"],
                                              body.name))


async def delete(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friendgroups.delete_group(caller.user_id, request.path_params["group_id"]))


async def members(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friendgroups.members_of(caller.user_id, request.path_params["group_id"]))


async def add(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendGroupMembersBody)
    return ok(await friendgroups.add_members(caller.user_id, request.path_params["group_id"],
                                             body.user_ids))


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friendgroups.remove_member(caller.user_id, request.path_params["group_id"],
                                               request.path_params["user_id"]))


# `{group_id:num}`: any other id matches no route, so it is a 404 like a missing group.
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
