"""The caller's own account: profile (read, change), sessions (list, sign one out), delete.

Profile changes reach the user's other devices (and friends) as `user_updated`; sessions ended
here get a `kicked` event before the broker closes their connections (`api.events.kick`).
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate, state_of
from api.envelope import ok
from api.events import announce_user_updated, kick
from api.schemas import ProfileBody, parse_body
from models.friend import friend_ids
from models.session import (
    EndReason,
    delete_account,
    end_own_session,
    live_sessions,
    update_profile,
)
from models.user import AccountRules, get_user


async def show(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    user = await get_user(caller.user_id)
    return ok(user.public())


async def change(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ProfileBody)
    state = state_of(request)
    update = await update_profile(
        caller.user_id, caller.session_id, body.changes(),
        current_password=body.current_password, code=body.code,
        rules=AccountRules.from_settings(state.settings),
    )
    await kick(state, caller.user_id, [s.id for s in update.ended], EndReason.PASSWORD_CHANGED)
    if update.changed - {"password_hash"}:
        await announce_user_updated(state, update.user, await friend_ids(caller.user_id))
    return ok(update.user.public())


async def remove(request: Request) -> JSONResponse:
    """Soft-delete: every session ends (this one too); restorable within the window."""
    caller = await authenticate(request)
    state = state_of(request)
    user, ended = await delete_account(caller.user_id)
    await kick(state, caller.user_id, [s.id for s in ended], EndReason.DELETED)
    assert user.deleted_at is not None  # noqa: S101  # delete_account just set it
    window = timedelta(days=state.settings.restore_window_days)
    return ok({"id": user.id, "deleted": True,
               "restore_until": (user.deleted_at + window).isoformat()})


async def sessions(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok([s.public(caller.session_id) for s in await live_sessions(caller.user_id)])


async def sign_out(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    session = await end_own_session(caller.user_id, request.path_params["session_id"],
                                    EndReason.SIGNED_OUT_REMOTELY)
    await kick(state_of(request), caller.user_id, [session.id], EndReason.SIGNED_OUT_REMOTELY)
    return ok({"id": session.id, "ended": True})


routes = [
    Route("/api/me", show, methods=["GET"]),
    Route("/api/me", change, methods=["PATCH"]),
    Route("/api/me", remove, methods=["DELETE"]),
    Route("/api/me/sessions", sessions, methods=["GET"]),
    Route("/api/me/sessions/{session_id:id}", sign_out, methods=["DELETE"]),
]
