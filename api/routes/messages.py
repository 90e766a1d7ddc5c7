"""Sending, read marks and sync: parse -> the same use cases as the MQTT ops -> serialise
(reading history is api/routes/history.py)."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import messaging, reading
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import ReadBody, SendBody, parse_body
from models.message import draft_of


async def send(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, SendBody)
    draft = draft_of(body, caller.user_id, request.path_params["thread_id"],
                     body.client_msg_id or f"http-{secrets.token_hex(8)}")
    result = await messaging.send_message(state_of(request).ctx, draft)
    return ok(result, status=200 if result.duplicate else 201)


async def read(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ReadBody)
    return ok(await reading.mark_read(state_of(request).ctx, caller.user_id,
                                      request.path_params["thread_id"], body.seq))


async def sync(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await reading.thread_counts(caller.user_id))


routes = [
    Route("/api/threads/{thread_id:id}/messages", send, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/read", read, methods=["POST"]),
    Route("/api/sync", sync, methods=["GET"]),
]
