"""Message search: in one thread, or in every thread the caller may read (docs/design.md
section 9). Parse -> actions/msgsearch.py -> serialise."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import msgsearch
from api.auth import authenticate
from api.envelope import ok
from api.schemas import query_int
from models.msgsearch import EPOCH_MS_MAX, LIMIT_DEFAULT, LIMIT_MAX, SearchQuery


def _query(request: Request) -> SearchQuery:
    params = request.query_params
    return SearchQuery(
        text=params.get("q", ""),
        sender_id=params.get("sender_id") or None,
        since_ms=query_int(request, "from", maximum=EPOCH_MS_MAX),
        until_ms=query_int(request, "to", maximum=EPOCH_MS_MAX),
        type=params.get("type") or None,
        limit=query_int(request, "limit", default=LIMIT_DEFAULT, minimum=1,
                        maximum=LIMIT_MAX) or LIMIT_DEFAULT,
    )


async def search_thread(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    query = _query(request)
    return ok(await msgsearch.search_thread(caller.user_id, request.path_params["thread_id"],
                                            query, query_int(request, "before_seq")))


async def search_messages(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    query = _query(request)
    return ok(await msgsearch.search_messages(caller.user_id, query,
                                              request.query_params.get("before_id") or None))


# Listed before api/routes/messages.py's routes, so that "search" is never taken for a message id.
routes = [
    Route("/api/threads/{thread_id:id}/messages/search", search_thread, methods=["GET"]),
    Route("/api/search/messages", search_messages, methods=["GET"]),
]
