"""Bearer authentication of HTTP requests: an access token (a JWT of a live login session), or a
bot's API token (`mqb_…`, docs/bots.md), which stands for the bot on every route without a
login session. Issuing tokens is `actions.sessions`' and `actions.bots`' business."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.state import ApiState
from contract.errors import TokenInvalidError
from models.bot import TOKEN_PREFIX
from models.bots import token_user
from models.ids import SessionId, UserId
from models.session import is_session_active
from models.tokens import decode_access_token

# The session of a caller that authenticated with a bot's API token: none (it names no row,
# so whatever a route does to "the caller's session" touches nothing).
NO_SESSION = SessionId("")


@dataclass(frozen=True)
class Caller:
    user_id: UserId
    session_id: SessionId  # NO_SESSION for a bot's API token


def state_of(request: Request) -> ApiState:
    state: ApiState = request.state.api
    return state


async def authenticate(request: Request) -> Caller:
    """The caller of a request with a live `Authorization: Bearer <access token>` or a bot's
    live API token (2001 when revoked or unknown)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenInvalidError("missing Authorization: Bearer <token> header")
    if token.strip().startswith(TOKEN_PREFIX):
        bot = await token_user(token.strip())
        request.state.user_id = bot.id
        return Caller(UserId(bot.id), NO_SESSION)
    claims = decode_access_token(state_of(request).ctx.settings.jwt_secret, token.strip())
    if not await is_session_active(claims.session_id, claims.user_id):
        raise TokenInvalidError("session has ended; log in again")
    request.state.user_id = claims.user_id  # for the request's log line (api/middleware.py)
    return Caller(claims.user_id, claims.session_id)

