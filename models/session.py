"""Login sessions: one per device login, holding the rotating refresh token.

A new login on a platform ends the older session on that platform. Refreshing rotates the token;
presenting an already-rotated token is treated as theft and ends the session (its whole family).
Every function that ends sessions returns them, so the use case can tell each device (a `kicked`
event) and the broker (which closes their connections) after the commit. The account changes
that end sessions (ban, password change, delete) are in `models/account.py` and
`models/profile.py`; they end them with `end_live_sessions`, inside their own transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from tortoise import connections, fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import (
    InvalidParameterError,
    NotFoundError,
    RefreshReuseError,
    TokenExpiredError,
    TokenInvalidError,
)
from models.clock import utcnow
from models.ids import SessionId, new_session_id
from models.sqldialect import SqlDialect
from models.tokens import hash_refresh_secret, new_refresh_secret, refresh_matches
from models.user import User, check_id_ref, has_bad_chars

logger = logging.getLogger(__name__)

PLATFORMS = ("ios", "android", "windows", "macos", "linux", "web", "device")
# The numeric platform ids of the seed API (Nexo IM): 1 iOS, 2 Android, 3 Windows, 4 macOS, 5 Web.
PLATFORM_IDS = {1: "ios", 2: "android", 3: "windows", 4: "macos", 5: "web"}


class EndReason:
    """Why a session ended: stored in `end_reason`, and sent in the `kicked` event."""

    LOGOUT = "logout"
    REPLACED = "replaced"  # a newer login on the same platform
    REFRESH_REUSE = "refresh_reuse"  # a rotated refresh token came back: theft assumed
    SIGNED_OUT_REMOTELY = "signed_out_remotely"  # DELETE /api/me/sessions/{id}
    # Every session but the one that changed the password. (A reason, not a secret.)
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    BANNED = "banned"
    DELETED = "deleted"


def normalise_platform(platform: str | int) -> str:
    """A platform name from PLATFORMS, or a seed platform id 1-5; InvalidParameterError else."""
    if isinstance(platform, int) and platform in PLATFORM_IDS:
        return PLATFORM_IDS[platform]
    if isinstance(platform, str) and platform.lower() in PLATFORMS:
        return platform.lower()
    raise InvalidParameterError(
        f"platform must be one of {', '.join(PLATFORMS)} (or a platform id 1-5)"
    )


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


async def start_session(user: User, platform: str | int, refresh_ttl: int) -> StartedSession:
    """Open a session for `user` on `platform`, ending the older live session(s) there."""
    platform = normalise_platform(platform)
    secret = new_refresh_secret()
    now = utcnow()
    async with in_transaction():
        older = await LoginSession.filter(user=user, platform=platform, ended_at=None)
        for old in older:
            old.ended_at, old.end_reason = now, EndReason.REPLACED
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
    # A NUL in the id would reach the database as a query error, not as "no such token".
    well_formed = bool(session_id and secret) and not has_bad_chars(session_id)
    async with in_transaction():
        session = (
            await LoginSession.select_for_update().get_or_none(id=session_id)
            if well_formed
            else None
        )
        if session is None or session.ended_at is not None:
            raise TokenInvalidError("refresh token invalid")
        reused = not refresh_matches(secret, session.refresh_hash)
        if reused:
            session.ended_at, session.end_reason = utcnow(), EndReason.REFRESH_REUSE
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


async def end_session(session_id: str, reason: str = EndReason.LOGOUT) -> None:
    await LoginSession.filter(id=session_id, ended_at=None).update(
        ended_at=utcnow(), end_reason=reason
    )


async def live_sessions(user_id: str) -> list[LoginSession]:
    """The user's sessions that are neither ended nor expired, oldest first."""
    return list(await LoginSession.filter(
        user_id=user_id, ended_at=None, expires_at__gt=utcnow()
    ).order_by("created_at"))


async def end_own_session(user_id: str, session_id: str, reason: str) -> LoginSession:
    """End one live session of `user_id`; NotFoundError (1005) for anyone else's, or one that
    has already ended (so nobody learns which session ids exist)."""
    check_id_ref(session_id, "session_id")
    async with in_transaction():
        session = await LoginSession.select_for_update().get_or_none(
            id=session_id, user_id=user_id, ended_at=None
        )
        if session is None:
            raise NotFoundError(f"session {session_id} not found")
        session.ended_at, session.end_reason = utcnow(), reason
        await session.save(update_fields=["ended_at", "end_reason"])
    return session


async def end_live_sessions(
    user_id: str, reason: str, *, keep: str | None = None
) -> list[LoginSession]:
    """End every live session of `user_id` but `keep`, and return them. Called inside the
    transaction of the change that ends them, so both commit or neither; exactly the sessions
    returned are ended, so each is told and none is missed."""
    live = LoginSession.filter(user_id=user_id, ended_at=None)
    if keep is not None:
        live = live.exclude(id=keep)
    ended = list(await live)
    if ended:
        await LoginSession.filter(id__in=[s.id for s in ended]).update(
            ended_at=utcnow(), end_reason=reason
        )
    return ended


async def recently_ended_sessions(within_seconds: int) -> list[LoginSession]:
    """Sessions ended recently enough that their access tokens may still be unexpired."""
    since = utcnow() - timedelta(seconds=within_seconds)
    return list(await LoginSession.filter(ended_at__gte=since))


async def is_session_active(session_id: str, user_id: str) -> bool:
    """Asked on every authenticated HTTP request: one primary-key probe in raw SQL, since
    building the ORM's query cost about 4x the statement itself (~200 µs against ~50 µs)."""
    conn = connections.get("default")
    d = SqlDialect(conn)
    rows = await conn.execute_query_dict(
        "SELECT 1 AS live FROM login_session WHERE id = "  # noqa: S608 -- placeholders only
        f"{d.numbered(1)} AND user_id = {d.numbered(2)} AND ended_at IS NULL",
        [session_id, user_id])
    return bool(rows)


async def get_session(session_id: SessionId) -> LoginSession | None:
    return await LoginSession.get_or_none(id=session_id)
