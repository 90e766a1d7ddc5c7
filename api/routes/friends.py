"""Friends, friend requests and blocks: parse → actions/friends.py → serialise. The friend-group
routes are listed here too, ahead of `/api/friends/{user_id}`, which would otherwise take
`/api/friends/groups` for a user id.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import friends
from api.auth import authenticate, state_of
from api.envelope import ok
from api.routes import friendgroups
from api.schemas import FriendRequestBody, UserRefBody, parse_body


async def send_request(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendRequestBody)
    sent = await friends.send_request(state_of(request).ctx, caller.user_id, body.user_id,
                                      body.message)
    return ok(sent, status=201)


async def requests_index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    params = request.query_params
    return ok(await friends.requests_of(caller.user_id, params.get("direction"),
                                        params.get("status")))


async def accept(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.accept_request(state_of(request).ctx, caller.user_id,
                                           request.path_params["request_id"]))


async def reject(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.reject_request(state_of(request).ctx, caller.user_id,
                                           request.path_params["request_id"]))


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.friends_of(caller.user_id))


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.friend_of(caller.user_id, request.path_params["user_id"]))


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.unfriend(state_of(request).ctx, caller.user_id,
                                     request.path_params["user_id"]))


async def block(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, UserRefBody)
    entry, created = await friends.block(caller.user_id, body.user_id)
    return ok(entry, status=201 if created else 200)


async def unblock(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.unblock(caller.user_id, request.path_params["user_id"]))


async def blocks_index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await friends.blocks_of(caller.user_id))


routes = [
    Route("/api/friends/requests", send_request, methods=["POST"]),
    Route("/api/friends/requests", requests_index, methods=["GET"]),
    Route("/api/friends/requests/{request_id:num}/accept", accept, methods=["POST"]),
    Route("/api/friends/requests/{request_id:num}/reject", reject, methods=["POST"]),
    *friendgroups.routes,
    Route("/api/friends", index, methods=["GET"]),
    Route("/api/friends/{user_id:id}", show, methods=["GET"]),
    Route("/api/friends/{user_id:id}", remove, methods=["DELETE"]),
    Route("/api/blocks", block, methods=["POST"]),
    Route("/api/blocks", blocks_index, methods=["GET"]),
    Route("/api/blocks/{user_id:id}", unblock, methods=["DELETE"]),
]
