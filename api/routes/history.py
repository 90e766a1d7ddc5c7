"""Reading a thread's timeline (docs/messages.md): history pages, one message, replies, edits of
a message are read here; parse -> actions/history.py -> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import history as history_action
from api.auth import authenticate
from api.envelope import ok
from api.schemas import query_int
from models.message import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX


async def history(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    entries = await history_action.history(
        caller.user_id,
        request.path_params["thread_id"],
        after_seq=query_int(request, "after_seq"),
        before_seq=query_int(request, "before_seq"),
        limit=query_int(request, "limit", default=HISTORY_LIMIT_DEFAULT, minimum=1,
                        maximum=HISTORY_LIMIT_MAX) or HISTORY_LIMIT_DEFAULT,
    )
    return ok(entries)


routes = [
    Route("/api/threads/{thread_id:id}/messages", history, methods=["GET"]),
]
