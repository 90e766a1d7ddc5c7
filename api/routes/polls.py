"""Polls, votes and forwarding (docs/messages.md): parse -> actions/polls.py, actions/forward.py
-> serialise. A vote here and the MQTT op `vote` run the same action."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import forward, polls
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import parse_body
from contract.polls import CreatePollBody, ForwardBody, VoteBody


async def create_poll(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, CreatePollBody)
    return ok(await polls.create_poll(
        state_of(request).ctx, caller.user_id, request.path_params["thread_id"], body.question,
        list(body.options), multiple=body.multiple, closes_at=body.closes_at), status=201)


async def get_poll(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await polls.get_poll(caller.user_id, request.path_params["thread_id"],
                                   request.path_params["poll_id"]))


async def vote(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, VoteBody)
    return ok(await polls.vote(state_of(request).ctx, caller.user_id,
                               request.path_params["thread_id"], request.path_params["poll_id"],
                               list(body.option_ids)))


async def close_poll(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await polls.close_poll(state_of(request).ctx, caller.user_id,
                                     request.path_params["thread_id"],
                                     request.path_params["poll_id"]))


async def forward_message(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ForwardBody)
    return ok(await forward.forward(
        state_of(request).ctx, caller.user_id, request.path_params["thread_id"],
        request.path_params["message_id"], list(body.thread_ids)), status=201)


routes = [
    Route("/api/threads/{thread_id:id}/polls", create_poll, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/polls/{poll_id:id}", get_poll, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/polls/{poll_id:id}/votes", vote, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/polls/{poll_id:id}/close", close_poll, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/messages/{message_id:id}/forward", forward_message,
          methods=["POST"]),
]
