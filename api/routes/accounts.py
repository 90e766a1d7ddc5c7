"""Accounts and sessions: register (or restore), login (or restore), refresh, logout, and the
email verification codes. The caller's own profile and sessions are in `me.py`.

Login, register and verify-code count against the abuse limits (models/ratelimit.py) before any
work, keyed by the client address that uvicorn reports; register and verify-code before the
body is even read. Behind a reverse proxy, uvicorn takes it from X-Forwarded-For only when the
proxy is trusted (FORWARDED_ALLOW_IPS in the environment of `mqim serve`/`mqim api`; 127.0.0.1
and ::1 by default); otherwise all clients share one budget.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import accounts, sessions
from api.auth import authenticate, state_of
from api.envelope import ok
from api.schemas import LoginBody, RefreshBody, RegisterBody, VerifyCodeBody, parse_body


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def register(request: Request) -> JSONResponse:
    ctx = state_of(request).ctx
    await ctx.limits.hit_register(client_address(request))  # before hashing the password
    body = await parse_body(request, RegisterBody)
    signed = await accounts.register(ctx, accounts.SignUp(
        name=body.name, password=body.password, user_id=body.user_id, email=body.email,
        phone=body.phone, code=body.code), body.platform)
    return ok(signed, status=200 if signed.restored else 201)


async def login(request: Request) -> JSONResponse:
    body = await parse_body(request, LoginBody)
    return ok(await accounts.login(state_of(request).ctx, body.login, body.password,
                                   body.platform, code=body.code,
                                   client=client_address(request)))


async def verify_code(request: Request) -> JSONResponse:
    """Mail a 6-digit code; the response never carries it."""
    state = state_of(request)
    await state.ctx.limits.hit_code(client_address(request))  # besides the per-email interval
    body = await parse_body(request, VerifyCodeBody)
    return ok(await accounts.send_code(state.ctx, state.mailer, body.email, body.purpose))


async def refresh(request: Request) -> JSONResponse:
    body = await parse_body(request, RefreshBody)
    return ok(await sessions.refresh(state_of(request).ctx, body.refresh_token))


async def logout(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    await sessions.logout(state_of(request).ctx, caller.user_id, caller.session_id)
    return ok(None)


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/verify-code", verify_code, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
]
