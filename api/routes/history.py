"""Reading a thread's timeline (docs/messages.md): history pages (by seq or by message id), one
entry, the replies to a message; parse -> actions/history.py -> serialise."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import history as history_action
from api.auth import authenticate
from api.envelope import ok
from api.schemas import query_int
from contract.errors import InvalidParameterError
from contract.fields import ID_PATTERN
from models.message import HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX

_ID = re.compile(ID_PATTERN)


def _query_id(request: Request, name: str) -> str | None:
    """An entry id from the query string (1001 if it could not be an id)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not _ID.fullmatch(value):
        raise InvalidParameterError(f"{name} must be a message_id")
    return value


def _limit(request: Request) -> int:
    return query_int(request, "limit", default=HISTORY_LIMIT_DEFAULT, minimum=1,
                     maximum=HISTORY_LIMIT_MAX) or HISTORY_LIMIT_DEFAULT


async def history(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    entries = await history_action.history(
        caller.user_id,
        request.path_params["thread_id"],
        after_seq=query_int(request, "after_seq"),
        before_seq=query_int(request, "before_seq"),
        limit=_limit(request),
        after_id=_query_id(request, "after_id"),
        before_id=_query_id(request, "before_id"),
    )
    return ok(entries)


async def one_entry(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await history_action.entry(caller.user_id, request.path_params["thread_id"],
                                         request.path_params["message_id"]))


async def replies(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await history_action.replies(
        caller.user_id, request.path_params["thread_id"], request.path_params["message_id"],
        after_seq=query_int(request, "after_seq"), before_seq=query_int(request, "before_seq"),
        limit=_limit(request)))


routes = [
    Route("/api/threads/{thread_id:id}/messages", history, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/messages/{message_id:id}", one_entry, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/messages/{message_id:id}/replies", replies,
          methods=["GET"]),
]
