"""Login sessions: one per device login, holding the rotating refresh token; and the account
changes that end sessions (ban, password change, delete, purge), each in one transaction.

A new login on a platform ends the older session on that platform. Refreshing rotates the token;
presenting an already-rotated token is treated as theft and ends the session (its whole family).
Every function that ends sessions returns them, so the API can tell each device (a `kicked`
event) and the broker (which closes their connections) after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import (
    InvalidParameterError,
    NotFoundError,
    RefreshReuseError,
    TokenExpiredError,
    TokenInvalidError,
    UserExistsError,
    UserNotFoundError,
)
from models.aclrule import AclRule
from models.clock import utcnow
from models.ids import SessionId, new_session_id
from models.presence import Presence
from models.tokens import hash_refresh_secret, new_refresh_secret, refresh_matches
from models.user import (
    PUBLIC_FIELDS,
    AccountRules,
    User,
    check_id_ref,
    check_profile_update,
    get_user,
    has_bad_chars,
)
from models.verification import VerificationCode

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

    def public(self, current_session_id: str | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "platform": self.platform,
            "created_at": self.created_at.isoformat(),
            "refreshed_at": None if self.refreshed_at is None else self.refreshed_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "current": self.id == current_session_id,
        }


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


async def set_banned(user_id: str, banned: bool) -> list[LoginSession]:
    """Ban (ending every live session, which are returned) or unban a user."""
    async with in_transaction():
        user = await User.get_or_none(id=check_id_ref(user_id))
        if user is None:
            raise UserNotFoundError(f"user {user_id} not found")
        user.banned_at = utcnow() if banned else None
        await user.save(update_fields=["banned_at"])
        if not banned:
            return []
        live = list(await LoginSession.filter(user_id=user_id, ended_at=None))
        await LoginSession.filter(user_id=user_id, ended_at=None).update(
            ended_at=utcnow(), end_reason=EndReason.BANNED
        )
    return live


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


@dataclass(frozen=True)
class ProfileUpdate:
    user: User
    changed: frozenset[str]  # the columns written
    ended: list[LoginSession]  # the other sessions a password change ended

    @property
    def public_changed(self) -> bool:
        """Whether what other users see changed."""
        return bool(self.changed & PUBLIC_FIELDS)


async def update_profile(
    user_id: str,
    session_id: str,
    changes: Mapping[str, Any],
    *,
    current_password: str | None = None,
    code: str | None = None,
    rules: AccountRules,
) -> ProfileUpdate:
    """Apply a profile change (rules in `models.user.check_profile_update`). A new password
    ends every other live session of the user in the same transaction."""
    user = await get_user(user_id)
    updates = await check_profile_update(
        user, changes, current_password=current_password, code=code, rules=rules
    )
    ended: list[LoginSession] = []
    if updates:
        try:
            async with in_transaction():
                await User.filter(id=user_id, deleted_at=None).update(**updates)
                if "password_hash" in updates:
                    others = LoginSession.filter(user_id=user_id, ended_at=None).exclude(
                        id=session_id)
                    ended = list(await others)
                    await LoginSession.filter(id__in=[s.id for s in ended]).update(
                        ended_at=utcnow(), end_reason=EndReason.PASSWORD_CHANGED
                    )
        except IntegrityError as exc:  # a concurrent change took the email first
            raise UserExistsError("a user with this email already exists") from exc
        await user.refresh_from_db()
    return ProfileUpdate(user, frozenset(updates), ended)


async def delete_account(user_id: str) -> tuple[User, list[LoginSession]]:
    """Mark the account deleted and end all its live sessions (returned).

    Nothing else is removed, so restoring (models.user) brings the account back as it was;
    `purge_deleted_users` removes it for good after the restore window.
    """
    now = utcnow()
    async with in_transaction():
        if not await User.filter(id=user_id, deleted_at=None).update(deleted_at=now):
            raise UserNotFoundError(f"user {user_id} not found")
        live = list(await LoginSession.filter(user_id=user_id, ended_at=None))
        await LoginSession.filter(user_id=user_id, ended_at=None).update(
            ended_at=now, end_reason=EndReason.DELETED
        )
    return await User.get(id=user_id), live


async def purge_deleted_users(window: timedelta, *, dry_run: bool = False) -> list[str]:
    """Remove for good the accounts deleted longer than `window` ago; their ids.

    The database cascades to sessions, memberships, friendships, friend requests, blocks and
    friend groups; messages stay, with `sender_id` NULL; a thread they owned keeps no owner.
    What is keyed by user id without a foreign key goes too (extra ACL rules, presence), and so
    do the codes sent to their emails, so that a new account with the same id or email starts
    clean.
    """
    cutoff = utcnow() - window
    rows = cast(list[tuple[str, str | None]], await User.filter(
        deleted_at__lt=cutoff).values_list("id", "email"))
    ids = [uid for uid, _ in rows]
    if dry_run or not ids:
        return ids
    emails = [email for _, email in rows if email]
    async with in_transaction():
        await AclRule.filter(user_id__in=ids).delete()
        await Presence.filter(user_id__in=ids).delete()
        if emails:
            await VerificationCode.filter(email__in=emails).delete()
        await User.filter(id__in=ids, deleted_at__lt=cutoff).delete()
    return ids


async def recently_ended_sessions(within_seconds: int) -> list[LoginSession]:
    """Sessions ended recently enough that their access tokens may still be unexpired."""
    since = utcnow() - timedelta(seconds=within_seconds)
    return list(await LoginSession.filter(ended_at__gte=since))


async def is_session_active(session_id: str, user_id: str) -> bool:
    session = await LoginSession.get_or_none(id=session_id, user_id=user_id)
    return session is not None and session.ended_at is None


async def get_session(session_id: SessionId) -> LoginSession | None:
    return await LoginSession.get_or_none(id=session_id)
