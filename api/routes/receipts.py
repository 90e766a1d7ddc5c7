"""Delivered marks, who read a message, and marking every thread read (docs/design.md section
10): parse -> the same use cases as the `delivered` op -> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import reading, receipts
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import ReadBody, parse_body


async def delivered(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ReadBody)  # the same `{seq}` as a read
    return ok(await reading.mark_delivered(state_of(request).ctx, caller.user_id,
                                           request.path_params["thread_id"], body.seq))


async def message_receipts(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await receipts.message_receipts(caller.user_id, request.path_params["thread_id"],
                                              request.path_params["message_id"]))


async def read_all(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await reading.mark_all_read(state_of(request).ctx, caller.user_id))


routes = [
    Route("/api/threads/read-all", read_all, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/delivered", delivered, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/messages/{message_id:id}/receipts", message_receipts,
          methods=["GET"]),
]
