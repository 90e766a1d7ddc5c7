"""Bot accounts (docs/bots.md): create and list your bots, issue or revoke their API tokens,
delete them; and `POST /api/auth/bot`, where a bot's program trades its token for the same
answer as a login (tokens and MQTT credentials). Managing a bot is its owner's or a server
admin's (1005 to anyone else, checked by the action)."""

from __future__ import annotations

from pydantic import StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import bots
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import Body, parse_body


class CreateBotBody(Body):
    name: StrictStr
    # The bot's user id (the rules of registering); a new random one when absent.
    user_id: StrictStr | None = None


class BotSignInBody(Body):
    token: StrictStr


async def create(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, CreateBotBody)
    return ok(await bots.create(state_of(request).ctx, caller.user_id, body.name, body.user_id),
              status=201)


async def list_own(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await bots.list_own(caller.user_id))


async def rotate_token(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await bots.rotate_token(state_of(request).ctx, caller.user_id,
                                      request.path_params["bot_id"]))


async def revoke_tokens(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await bots.revoke_tokens(state_of(request).ctx, caller.user_id,
                                       request.path_params["bot_id"]))


async def delete(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await bots.delete(state_of(request).ctx, caller.user_id,
                                request.path_params["bot_id"]))


async def sign_in(request: Request) -> JSONResponse:
    body = await parse_body(request, BotSignInBody)
    return ok(await bots.sign_in(state_of(request).ctx, body.token))


routes: list[Route] = [
    Route("/api/bots", create, methods=["POST"]),
    Route("/api/bots", list_own, methods=["GET"]),
    Route("/api/bots/{bot_id:id}/token", rotate_token, methods=["POST"]),
    Route("/api/bots/{bot_id:id}/token", revoke_tokens, methods=["DELETE"]),
    Route("/api/bots/{bot_id:id}", delete, methods=["DELETE"]),
    Route("/api/auth/bot", sign_in, methods=["POST"]),
]
