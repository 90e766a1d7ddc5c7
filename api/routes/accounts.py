"""Accounts and sessions: register (or restore), login (or restore), refresh, logout, and the
email verification codes. The caller's own profile and sessions are in `me.py`.

Login, register and verify-code count against the abuse limits (models/ratelimit.py) before any
work, keyed by the client address that uvicorn reports. Behind a reverse proxy, uvicorn takes it
from X-Forwarded-For only when the proxy is trusted (FORWARDED_ALLOW_IPS in the environment of
`mqim serve`/`mqim api`; 127.0.0.1 and ::1 by default); otherwise all clients share one budget.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth import authenticate, state_of, token_bundle
from api.envelope import ok
from api.events import announce_session_end, kick
from api.schemas import LoginBody, RefreshBody, RegisterBody, VerifyCodeBody, parse_body
from api.state import ApiState
from contract.errors import MailFailedError, RefreshReuseError
from models.session import (
    EndReason,
    end_session,
    normalise_platform,
    rotate_refresh_token,
    start_session,
)
from models.user import (
    AccountRules,
    SignIn,
    authenticate_user,
    check_code_request,
    get_user,
    register_user,
)
from models.verification import CODE_TTL, discard_code, issue_code

MAIL_SUBJECT = "Your mqim verification code"
_PURPOSE_TEXT = {
    "register": "to create your account",
    "change_email": "to use this address for your account",
    "restore": "to restore your deleted account",
}


async def _signed_in(state: ApiState, signed: SignIn, platform: str, status: int) -> JSONResponse:
    """Open the session, end the older one on that platform, answer with the token bundle."""
    user = signed.user
    started = await start_session(user, platform, state.settings.refresh_token_ttl)
    await kick(state, user.id, [old.id for old in started.ended], EndReason.REPLACED)
    bundle = token_bundle(state, user, started.session, started.refresh_token)
    return ok({**bundle, "restored": signed.restored}, status=200 if signed.restored else status)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def register(request: Request) -> JSONResponse:
    state = state_of(request)
    await state.limits.hit_register(client_address(request))  # before hashing the password
    body = await parse_body(request, RegisterBody)
    platform = normalise_platform(body.platform)  # before anything is stored
    signed = await register_user(
        name=body.name, password=body.password, user_id=body.user_id, email=body.email,
        phone=body.phone, code=body.code, rules=AccountRules.from_settings(state.settings),
    )
    return await _signed_in(state, signed, platform, 201)


async def login(request: Request) -> JSONResponse:
    body = await parse_body(request, LoginBody)
    platform = normalise_platform(body.platform)  # before a deleted account is restored
    state = state_of(request)
    # Every attempt counts, known account or not, before the password is checked: past the
    # limit even the right password is refused, so guessing cannot go on.
    await state.limits.hit_login(body.login, client_address(request))
    signed = await authenticate_user(body.login, body.password, code=body.code,
                                     rules=AccountRules.from_settings(state.settings))
    await state.limits.login_succeeded(body.login)
    return await _signed_in(state, signed, platform, 200)


async def verify_code(request: Request) -> JSONResponse:
    """Mail a 6-digit code; the response never carries it."""
    state = state_of(request)
    await state.limits.hit_code(client_address(request))  # besides the per-email interval
    body = await parse_body(request, VerifyCodeBody)
    email = await check_code_request(body.email, body.purpose)
    issued = await issue_code(email, body.purpose, secret=state.settings.jwt_secret,
                              interval=state.settings.email_code_interval)
    minutes = int(CODE_TTL.total_seconds()) // 60
    text = (f"Your mqim verification code is {issued.code}\n\n"
            f"Enter it {_PURPOSE_TEXT[body.purpose]}. It expires in {minutes} minutes.\n"
            "If you did not ask for it, ignore this mail.\n")
    try:
        await state.mailer.send(email, MAIL_SUBJECT, text)
    except MailFailedError:
        await discard_code(issued.id)
        raise
    return ok({"email": email, "purpose": body.purpose,
               "expires_in": int(CODE_TTL.total_seconds()),
               "resend_after": state.settings.email_code_interval})


async def refresh(request: Request) -> JSONResponse:
    body = await parse_body(request, RefreshBody)
    state = state_of(request)
    try:
        session, refresh_token = await rotate_refresh_token(
            body.refresh_token, state.settings.refresh_token_ttl
        )
    except RefreshReuseError as exc:
        await kick(state, exc.user_id, [exc.session_id], EndReason.REFRESH_REUSE)
        raise
    user = await get_user(session.user_id)
    return ok(token_bundle(state, user, session, refresh_token))


async def logout(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    await end_session(caller.session_id)
    await announce_session_end(state_of(request), caller.user_id, caller.session_id)
    return ok(None)


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/verify-code", verify_code, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
]
