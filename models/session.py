"""Login sessions: one per device login, holding the rotating refresh token.

A new login on a platform ends the older session on that platform. Refreshing rotates the token;
presenting an already-rotated token is treated as theft and ends the session (its whole family).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.clock import utcnow
from models.errors import (
    InvalidParameterError,
    RefreshReuseError,
    TokenExpiredError,
    TokenInvalidError,
    UserNotFoundError,
)
from models.ids import SessionId, new_session_id
from models.tokens import hash_refresh_secret, new_refresh_secret, refresh_matches
from models.user import User

logger = logging.getLogger(__name__)

PLATFORMS = ("ios", "android", "windows", "macos", "linux", "web", "device")


class LoginSession(Model):
    id = fields.CharField(primary_key=True, max_length=32)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: str  # the raw column tortoise adds for `user`
    platform = fields.CharField(max_length=16)
    refresh_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    refreshed_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    end_reason = fields.CharField(max_length=32, null=True)

    class Meta:
        table = "login_session"
        indexes = (("user_id", "platform"),)

    @property
    def mqtt_client_id(self) -> str:
        return f"{self.user_id}:{self.id[:12]}"

    def is_active(self) -> bool:
        return self.ended_at is None and self.expires_at > utcnow()


@dataclass(frozen=True)
class StartedSession:
    session: LoginSession
    refresh_token: str
    ended: list[LoginSession]


async def start_session(user: User, platform: str, refresh_ttl: int) -> StartedSession:
    """Open a session for `user` on `platform`, ending the older live session(s) there."""
    if platform not in PLATFORMS:
        raise InvalidParameterError(f"platform must be one of {', '.join(PLATFORMS)}")
    secret = new_refresh_secret()
    now = utcnow()
    async with in_transaction():
        older = await LoginSession.filter(user=user, platform=platform, ended_at=None)
        for old in older:
            old.ended_at, old.end_reason = now, "replaced"
            await old.save(update_fields=["ended_at", "end_reason"])
        session = await LoginSession.create(
            id=new_session_id(),
            user=user,
            platform=platform,
            refresh_hash=hash_refresh_secret(secret),
            expires_at=now + timedelta(seconds=refresh_ttl),
        )
    return StartedSession(session, f"{session.id}.{secret}", older)


async def rotate_refresh_token(token: str, refresh_ttl: int) -> tuple[LoginSession, str]:
    """Swap a refresh token for a new one. Reuse of a rotated token ends the session."""
    session_id, _, secret = token.partition(".")
    async with in_transaction():
        session = (
            await LoginSession.select_for_update().get_or_none(id=session_id)
            if session_id and secret
            else None
        )
        if session is None or session.ended_at is not None:
            raise TokenInvalidError("refresh token invalid")
        reused = not refresh_matches(secret, session.refresh_hash)
        if reused:
            session.ended_at, session.end_reason = utcnow(), "refresh_reuse"
            await session.save(update_fields=["ended_at", "end_reason"])
        else:
            if session.expires_at <= utcnow():
                raise TokenExpiredError("refresh token expired")
            secret = new_refresh_secret()
            session.refresh_hash = hash_refresh_secret(secret)
            session.refreshed_at = utcnow()
            session.expires_at = session.refreshed_at + timedelta(seconds=refresh_ttl)
            await session.save(update_fields=["refresh_hash", "refreshed_at", "expires_at"])
    if reused:  # raised only now, so the ending above is committed, not rolled back
        logger.warning("refresh token reuse on session %s: session ended", session.id)
        raise RefreshReuseError(session.user_id, session.id)
    return session, f"{session.id}.{secret}"


async def end_session(session_id: str, reason: str = "logout") -> None:
    await LoginSession.filter(id=session_id, ended_at=None).update(
        ended_at=utcnow(), end_reason=reason
    )


async def set_banned(user_id: str, banned: bool) -> list[LoginSession]:
    """Ban (ending every live session, which are returned) or unban a user."""
    async with in_transaction():
        user = await User.get_or_none(id=user_id)
        if user is None:
            raise UserNotFoundError(f"user {user_id} not found")
        user.banned_at = utcnow() if banned else None
        await user.save(update_fields=["banned_at"])
        if not banned:
            return []
        live = list(await LoginSession.filter(user_id=user_id, ended_at=None))
        await LoginSession.filter(user_id=user_id, ended_at=None).update(
            ended_at=utcnow(), end_reason="banned"
        )
    return live


async def recently_ended_sessions(within_seconds: int) -> list[LoginSession]:
    """Sessions ended recently enough that their access tokens may still be unexpired."""
    since = utcnow() - timedelta(seconds=within_seconds)
    return list(await LoginSession.filter(ended_at__gte=since))


async def is_session_active(session_id: str, user_id: str) -> bool:
    session = await LoginSession.get_or_none(id=session_id, user_id=user_id)
    return session is not None and session.ended_at is None


async def get_session(session_id: SessionId) -> LoginSession | None:
    return await LoginSession.get_or_none(id=session_id)
