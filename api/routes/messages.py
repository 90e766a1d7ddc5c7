"""History, sending over HTTP (the same append and events as MQTT), read marks and sync."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate, state_of
from api.envelope import ok
from api.events import announce
from api.schemas import ReadBody, SendBody, parse_body, query_int
from contract.errors import MqimError
from models.append import append_messages
from models.message import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX, draft_of, get_history
from models.readstate import mark_read, sync_state


async def history(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    entries = await get_history(
        caller.user_id,
        request.path_params["thread_id"],
        after_seq=query_int(request, "after_seq"),
        before_seq=query_int(request, "before_seq"),
        limit=query_int(request, "limit", default=HISTORY_LIMIT_DEFAULT, minimum=1,
                        maximum=HISTORY_LIMIT_MAX) or HISTORY_LIMIT_DEFAULT,
    )
    return ok([e.to_event() for e in entries])


async def send(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, SendBody)
    state = state_of(request)
    await state.limits.hit_send(caller.user_id)
    thread_id = request.path_params["thread_id"]
    draft = draft_of(body,
        caller.user_id, thread_id, body.client_msg_id or f"http-{secrets.token_hex(8)}"
    )
    [result] = await append_messages([draft], max_body_chars=state.settings.max_body_chars)
    if isinstance(result, MqimError):
        raise result
    entry = result.entry
    # Also on a duplicate: the first attempt may have committed without publishing. Always on
    # the entry's own thread (a reuse in another thread is refused by append_messages).
    await announce(state, [(state.scheme.thread(entry.thread_id), entry.to_event())])
    data = {"message_id": entry.id, "seq": entry.seq, "thread_id": entry.thread_id,
            "client_msg_id": entry.client_msg_id, "duplicate": result.duplicate}
    return ok(data, status=200 if result.duplicate else 201)


async def read(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ReadBody)
    state = state_of(request)
    mark = await mark_read(caller.user_id, request.path_params["thread_id"], body.seq)
    if mark.advanced:
        await announce(state, [
            (state.scheme.thread(mark.thread_id), mark.receipt_event()),
            (state.scheme.user(caller.user_id), mark.sync_event()),
        ])
    return ok({"thread_id": mark.thread_id, "read_seq": mark.read_seq})


async def sync(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await sync_state(caller.user_id))


routes = [
    Route("/api/threads/{thread_id:id}/messages", history, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/messages", send, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/read", read, methods=["POST"]),
    Route("/api/sync", sync, methods=["GET"]),
]
