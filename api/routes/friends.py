"""Friends, friend requests and blocks; the friend-group routes are listed here too, ahead of
`/api/friends/{user_id}`, which would otherwise take `/api/friends/groups` for a user id.

Personal events go out on `im/u/{user}` after the commit: `friend_request` to the recipient,
`friend_request_accepted` / `friend_request_rejected` to the sender, `friend_removed` to the
removed friend. Blocking publishes nothing: the blocked user is not told.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate, state_of
from api.envelope import ok
from api.events import announce
from api.routes import friendgroups
from api.schemas import FriendRequestBody, UserRefBody, parse_body
from broker.link.publisher import Event
from models.friend import (
    accept_friend_request,
    accepted_event,
    block_info,
    block_user,
    get_friend,
    list_blocks,
    list_friend_requests,
    list_friends,
    reject_friend_request,
    rejected_event,
    remove_friend,
    removed_event,
    request_event,
    request_info,
    send_friend_request,
    unblock_user,
)


async def send_request(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, FriendRequestBody)
    state = state_of(request)
    outcome = await send_friend_request(caller.user_id, body.user_id, body.message)
    sent = outcome.request
    events: list[Event] = []
    if outcome.accepted is None:
        events.append((state.scheme.user(sent.to_user_id), request_event(sent)))
    else:  # it answered their pending request: tell them it was accepted
        events.append((state.scheme.user(outcome.accepted.from_user_id),
                       accepted_event(outcome.accepted)))
    await announce(state, events)
    return ok(request_info(sent), status=201)


async def requests_index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    params = request.query_params
    found = await list_friend_requests(caller.user_id, params.get("direction"),
                                       params.get("status"))
    return ok([request_info(r) for r in found])


async def accept(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    state = state_of(request)
    decided = await accept_friend_request(caller.user_id, request.path_params["request_id"])
    await announce(state, [(state.scheme.user(decided.from_user_id), accepted_event(decided))])
    return ok(request_info(decided))


async def reject(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    state = state_of(request)
    decided = await reject_friend_request(caller.user_id, request.path_params["request_id"])
    await announce(state, [(state.scheme.user(decided.from_user_id), rejected_event(decided))])
    return ok(request_info(decided))


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await list_friends(caller.user_id))


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await get_friend(caller.user_id, request.path_params["user_id"]))


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    state = state_of(request)
    friend_id: str = request.path_params["user_id"]
    await remove_friend(caller.user_id, friend_id)
    await announce(state, [(state.scheme.user(friend_id), removed_event(caller.user_id))])
    return ok({"user_id": friend_id})


async def block(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, UserRefBody)
    outcome = await block_user(caller.user_id, body.user_id)
    return ok(block_info(outcome.block), status=201 if outcome.created else 200)


async def unblock(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    user_id: str = request.path_params["user_id"]
    await unblock_user(caller.user_id, user_id)
    return ok({"user_id": user_id})


async def blocks_index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await list_blocks(caller.user_id))


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
