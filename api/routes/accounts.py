"""Accounts and sessions: register, login, refresh, logout, me."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate, state_of, token_bundle
from api.envelope import ok
from api.events import announce_session_end
from api.schemas import LoginBody, RefreshBody, RegisterBody, parse_body
from models.errors import RefreshReuseError
from models.session import end_session, rotate_refresh_token, start_session
from models.user import authenticate_user, get_user, register_user


async def register(request: Request) -> JSONResponse:
    body = await parse_body(request, RegisterBody)
    state = state_of(request)
    user = await register_user(
        name=body.name, password=body.password, user_id=body.user_id, email=body.email,
        phone=body.phone, bcrypt_rounds=state.settings.bcrypt_rounds,
    )
    started = await start_session(user, body.platform, state.settings.refresh_token_ttl)
    return ok(token_bundle(state, user, started.session, started.refresh_token), status=201)


async def login(request: Request) -> JSONResponse:
    body = await parse_body(request, LoginBody)
    state = state_of(request)
    user = await authenticate_user(body.login, body.password)
    started = await start_session(user, body.platform, state.settings.refresh_token_ttl)
    for old in started.ended:
        await announce_session_end(state, user.id, old.id)
    return ok(token_bundle(state, user, started.session, started.refresh_token))


async def refresh(request: Request) -> JSONResponse:
    body = await parse_body(request, RefreshBody)
    state = state_of(request)
    try:
        session, refresh_token = await rotate_refresh_token(
            body.refresh_token, state.settings.refresh_token_ttl
        )
    except RefreshReuseError as exc:
        await announce_session_end(state, exc.user_id, exc.session_id)
        raise
    user = await get_user(session.user_id)
    return ok(token_bundle(state, user, session, refresh_token))


async def logout(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    await end_session(caller.session_id)
    await announce_session_end(state_of(request), caller.user_id, caller.session_id)
    return ok(None)


async def me(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    user = await get_user(caller.user_id)
    return ok(user.public())


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
]
