"""The caller's own account: profile (read, change), sessions (list, sign one out), delete.

Profile changes reach the user's other devices (and friends) as `user_updated`; sessions ended
here get a `kicked` event before the broker closes their connections (`actions.sessions.kick`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import accounts, sessions
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import ProfileBody, parse_body


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await accounts.own_profile(caller.user_id))


async def change(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ProfileBody)
    return ok(await accounts.change_profile(
        state_of(request).ctx, caller.user_id, caller.session_id, body.changes(),
        current_password=body.current_password, code=body.code))


async def remove(request: Request) -> JSONResponse:
    """Soft-delete: every session ends (this one too); restorable within the window."""
    caller = await authenticate(request)
    return ok(await accounts.delete_account(state_of(request).ctx, caller.user_id))


async def list_sessions(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await sessions.list_sessions(caller.user_id, caller.session_id))


async def sign_out(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await sessions.sign_out(state_of(request).ctx, caller.user_id,
                                      request.path_params["session_id"]))


routes = [
    Route("/api/me", show, methods=["GET"]),
    Route("/api/me", change, methods=["PATCH"]),
    Route("/api/me", remove, methods=["DELETE"]),
    Route("/api/me/sessions", list_sessions, methods=["GET"]),
    Route("/api/me/sessions/{session_id:id}", sign_out, methods=["DELETE"]),
]
