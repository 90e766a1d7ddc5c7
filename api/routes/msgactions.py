"""Reactions, unsend and edit of a message (docs/messages.md): parse -> actions/msgactions.py
(the same use cases as the MQTT ops) -> serialise."""

from __future__ import annotations

from typing import Any

from pydantic import StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import msgactions
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import Body, parse_body
from contract.commands import EmojiField


class ReactBody(Body):
    emoji: EmojiField


class EditBody(Body):
    """The new body and/or content; what is left out stays as it was."""

    body: StrictStr | None = None
    content: dict[str, Any] | None = None


def _ids(request: Request) -> tuple[str, str]:
    return request.path_params["thread_id"], request.path_params["message_id"]


async def react(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ReactBody)
    return ok(await msgactions.react(state_of(request).ctx, caller.user_id, *_ids(request),
                                     body.emoji))


async def unreact(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    # The path is percent-decoded already; the action checks the emoji as the op's would be.
    return ok(await msgactions.unreact(state_of(request).ctx, caller.user_id, *_ids(request),
                                       request.path_params["emoji"]))


async def unsend(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await msgactions.unsend(state_of(request).ctx, caller.user_id, *_ids(request)))


async def edit(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, EditBody)
    return ok(await msgactions.edit(state_of(request).ctx, caller.user_id, *_ids(request),
                                    body=body.body, content=body.content))


async def edits(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await msgactions.message_edits(caller.user_id, *_ids(request)))


_M = "/api/threads/{thread_id:id}/messages/{message_id:id}"

routes = [
    Route(f"{_M}/reactions", react, methods=["POST"]),
    # `path`: an emoji is any text up to 32 characters, "/" included.
    Route(f"{_M}/reactions/{{emoji:path}}", unreact, methods=["DELETE"]),
    Route(_M, unsend, methods=["DELETE"]),
    Route(_M, edit, methods=["PATCH"]),
    Route(f"{_M}/edits", edits, methods=["GET"]),
]
