"""Bearer authentication of HTTP requests. Issuing tokens is `actions.sessions`' business."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.state import ApiState
from contract.errors import TokenInvalidError
from models.ids import SessionId, UserId
from models.session import is_session_active
from models.tokens import decode_access_token


@dataclass(frozen=True)
class Caller:
    user_id: UserId
    session_id: SessionId


def state_of(request: Request) -> ApiState:
    state: ApiState = request.state.api
    return state


async def authenticate(request: Request) -> Caller:
    """The caller of a request with a live `Authorization: Bearer <access token>`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenInvalidError("missing Authorization: Bearer <token> header")
    claims = decode_access_token(state_of(request).ctx.settings.jwt_secret, token.strip())
    if not await is_session_active(claims.session_id, claims.user_id):
        raise TokenInvalidError("session has ended; log in again")
    request.state.user_id = claims.user_id  # for the request's log line (api/middleware.py)
    return Caller(claims.user_id, claims.session_id)

