"""Login sessions: opening one once an account is signed in, refreshing its tokens, signing out
(this device, or another of yours), listing yours; and `kick`, the one way every use case that
ends sessions tells their devices and the broker.

    open_session(ctx, signed, platform) -> SignedIn       after register or login
    refresh(ctx, refresh_token)         -> TokenBundle
    logout(ctx, user_id, session_id)
    list_sessions(user_id, current)     -> [SessionView]
    sign_out(ctx, user_id, session_id)  -> SessionEnded
    kick(ctx, user_id, session_ids, reason)

Who may sign in (passwords, bans, deleted accounts) is `actions/accounts.py`'s business; this
module trusts the user it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

from actions.context import Context
from actions.profiles import user_self
from contract.accounts import MqttCredentials, SessionEnded, SessionView, SignedIn, TokenBundle
from contract.errors import RefreshReuseError
from contract.events import KickedEvent
from models.account import SignIn
from models.bots import is_bot
from models.clock import utcnow
from models.session import (
    EndReason,
    LoginSession,
    end_own_session,
    end_session,
    live_sessions,
    rotate_refresh_token,
    start_session,
)
from models.tokens import issue_access_token
from models.user import User, get_user


def _bundle(ctx: Context, user: User, session: LoginSession, refresh_token: str, *,
            is_bot: bool = False) -> TokenBundle:
    settings = ctx.settings
    token = issue_access_token(settings.jwt_secret, user.id, session.id, settings.access_token_ttl)
    return TokenBundle(
        token=token, expires_in=settings.access_token_ttl, refresh_token=refresh_token,
        session_id=session.id, user=user_self(user, is_bot=is_bot),
        mqtt=MqttCredentials(username=user.id, password=token, client_id=session.mqtt_client_id,
                             topic_prefix=settings.topic_prefix),
    )


async def open_session(ctx: Context, signed: SignIn, platform: str) -> SignedIn:
    """Open a session for a signed-in user; the older one on that platform ends (`replaced`)."""
    started = await start_session(signed.user, platform, ctx.settings.refresh_token_ttl)
    await kick(ctx, signed.user.id, [old.id for old in started.ended], EndReason.REPLACED)
    bundle = _bundle(ctx, signed.user, started.session, started.refresh_token)
    return SignedIn(**dict(bundle), restored=signed.restored)


async def refresh(ctx: Context, refresh_token: str) -> TokenBundle:
    """New tokens for a refresh token. A rotated token presented again ends its session (theft
    assumed): that device is kicked, and the error still reaches the caller."""
    try:
        session, rotated = await rotate_refresh_token(refresh_token,
                                                      ctx.settings.refresh_token_ttl)
    except RefreshReuseError as exc:
        await kick(ctx, exc.user_id, [exc.session_id], EndReason.REFRESH_REUSE)
        raise
    return _bundle(ctx, await get_user(session.user_id), session, rotated,
                   is_bot=await is_bot(session.user_id))


async def logout(ctx: Context, user_id: str, session_id: str) -> None:
    """End the caller's own session. The device asked, so it gets no `kicked` event."""
    if not session_id:  # a bot's API token (api/auth.NO_SESSION) names no session to end
        return
    await end_session(session_id)
    await _tell_broker(ctx, user_id, session_id)


def _view(session: LoginSession, current_session_id: str) -> SessionView:
    refreshed = session.refreshed_at
    return SessionView(
        id=session.id, platform=session.platform, created_at=session.created_at.isoformat(),
        refreshed_at=None if refreshed is None else refreshed.isoformat(),
        expires_at=session.expires_at.isoformat(), current=session.id == current_session_id,
    )


async def list_sessions(user_id: str, current_session_id: str) -> list[SessionView]:
    return [_view(s, current_session_id) for s in await live_sessions(user_id)]


async def sign_out(ctx: Context, user_id: str, session_id: str) -> SessionEnded:
    """End another live session of the caller (or this one); 1005 for anyone else's."""
    session = await end_own_session(user_id, session_id, EndReason.SIGNED_OUT_REMOTELY)
    await kick(ctx, user_id, [session.id], EndReason.SIGNED_OUT_REMOTELY)
    return SessionEnded(id=session.id, ended=True)


async def kick(ctx: Context, user_id: str, session_ids: Sequence[str], reason: str) -> None:
    """Tell the devices of ended (committed) sessions why, then the broker, which closes their
    connections.

    The `kicked` event goes first, on `{prefix}/u/{user}`, so the device still connected there
    reads it before the broker drops it; every device of the user sees it and compares
    `session_id` with its own.
    """
    if not session_ids:
        return
    topic = ctx.topics.user(user_id)
    await ctx.publish([(topic, KickedEvent(type="kicked", session_id=sid, reason=reason))
                       for sid in session_ids])
    for sid in session_ids:
        await _tell_broker(ctx, user_id, sid)


async def _tell_broker(ctx: Context, user_id: str, session_id: str) -> None:
    """The broker refuses the session from now on; its access tokens live at most one more TTL.
    A failure is logged, not raised: the session has ended all the same."""
    until = int(utcnow().timestamp()) + ctx.settings.access_token_ttl
    await ctx.tell_broker(ctx.access.session_ended(user_id, session_id, until),
                          f"session {session_id} ended")
