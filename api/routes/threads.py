"""Threads and their members: create, list, info, add, remove/leave."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions.timeline import entry_event
from api.auth import authenticate, state_of
from api.envelope import ok
from api.events import announce_membership
from api.schemas import AddMembersBody, CreateThreadBody, parse_body
from models.membership import add_members, create_thread, remove_member
from models.readstate import list_threads, thread_info


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, CreateThreadBody)
    change = await create_thread(caller.user_id, body.type, body.user_ids, body.name)
    if change.created:
        await announce_membership(state_of(request), change, caller.user_id)
    info = await thread_info(caller.user_id, change.thread.id)
    return ok({**info, "created": change.created}, status=201 if change.created else 200)


async def index(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    threads = await list_threads(caller.user_id)
    return ok([{**t, "last_message": t["last_message"] and entry_event(t["last_message"])}
               for t in threads])


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await thread_info(caller.user_id, request.path_params["thread_id"]))


async def add(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, AddMembersBody)
    thread_id = request.path_params["thread_id"]
    change = await add_members(caller.user_id, thread_id, body.user_ids)
    await announce_membership(state_of(request), change, caller.user_id)
    return ok({"thread_id": thread_id, "added": change.added,
               "seq": change.entry.seq if change.entry else None})


async def remove(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    thread_id = request.path_params["thread_id"]
    change = await remove_member(caller.user_id, thread_id, request.path_params["user_id"])
    await announce_membership(state_of(request), change, caller.user_id)
    return ok({"thread_id": thread_id, "removed": change.removed,
               "seq": change.entry.seq if change.entry else None})


routes = [
    Route("/api/threads", create, methods=["POST"]),
    Route("/api/threads", index, methods=["GET"]),
    Route("/api/threads/{thread_id:id}", show, methods=["GET"]),
    Route("/api/threads/{thread_id:id}/members", add, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/members/{user_id:id}", remove, methods=["DELETE"]),
]
