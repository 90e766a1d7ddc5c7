"""Bot accounts (docs/bots.md): creating one (a user, its Bot row and a first API token, in one
transaction), who may manage it, its tokens (issue, revoke, resolve), which users are bots, and
the login session a bot signs in with (platform "bot").

A bot's user row holds a bcrypt hash of a random secret nobody ever sees, so no password logs
it in. Tokens are `mqb_` + 40 random URL-safe characters; only their SHA-256 is stored. The
sessions these changes end are returned for the use case to kick after the commit (as
models/account.py does); building wire shapes is the use cases' job.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from contract.errors import (
    AccountBannedError,
    ForbiddenError,
    InvalidParameterError,
    NotFoundError,
    TokenInvalidError,
    UserExistsError,
)
from models.bot import TOKEN_PREFIX, Bot, BotToken
from models.clock import utcnow
from models.ids import RESERVED_IDS, is_valid_id, new_session_id, new_user_id
from models.password import hash_password
from models.session import EndReason, LoginSession, end_live_sessions
from models.tokens import hash_refresh_secret, new_refresh_secret
from models.user import User, check_id_ref, check_name, has_bad_chars

BOTS_PER_OWNER = 20
BOT_PLATFORM = "bot"
SHOWN_PREFIX = 8  # characters of a token kept to tell tokens apart: "mqb_" and 4 random ones
# How often at most a token's last_used_at is written: not a write per request.
LAST_USED_EVERY = timedelta(minutes=1)
# Why a bot's sessions ended, in `kicked` (its token was rotated or revoked).
TOKEN_REVOKED = "token_revoked"  # noqa: S105  # a reason, not a secret
_TOKEN_BYTES = 30  # 40 URL-safe characters


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    row: BotToken


@dataclass(frozen=True)
class CreatedBot:
    user: User
    bot: Bot
    token: IssuedToken


@dataclass(frozen=True)
class BotListing:
    user: User
    bot: Bot
    tokens: list[BotToken]


@dataclass(frozen=True)
class Revoked:
    bot_id: str
    revoked: int  # tokens revoked by this call
    ended: list[LoginSession]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


async def _issue(bot_id: str) -> IssuedToken:
    """A new token row for `bot_id` (inside the caller's transaction)."""
    token = _new_token()
    row = await BotToken.create(bot_id=bot_id, token_hash=hash_token(token),
                                prefix=token[:SHOWN_PREFIX])
    return IssuedToken(token, row)


async def is_bot(user_id: str) -> bool:
    return await Bot.filter(user_id=user_id).exists()


async def bot_ids(user_ids: Iterable[str]) -> frozenset[str]:
    """Which of `user_ids` are bots, in one statement."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return frozenset()
    rows = await Bot.filter(user_id__in=wanted).values_list("user_id", flat=True)
    return frozenset(cast(list[str], rows))


async def create_bot(owner_id: str, name: str, user_id: str | None, *,
                     bcrypt_rounds: int) -> CreatedBot:
    """A bot owned by `owner_id` (not a bot itself, at most BOTS_PER_OWNER live ones) with its
    first token. The id follows the rules of registering (1001), and is taken (2007) by any
    user, live or deleted."""
    name = check_name(name)
    if user_id is not None and (has_bad_chars(user_id) or not is_valid_id(user_id)):
        raise InvalidParameterError(
            "user_id must be 1-64 letters, digits, '_', '-' or '.', start with a letter or "
            "digit, not start with 'mqim-', and not be a reserved word "
            f"({', '.join(sorted(RESERVED_IDS))})")
    if await is_bot(owner_id):
        raise ForbiddenError("a bot cannot create bots")
    # Nobody knows this password: no login with a password reaches the bot.
    password_hash = await hash_password(secrets.token_urlsafe(32), bcrypt_rounds)
    try:
        async with in_transaction():
            # Serialises the owner's creations (PostgreSQL), so the limit holds under races.
            _ = await User.select_for_update().get(id=owner_id)
            live = await Bot.filter(owner_id=owner_id, user__deleted_at=None).count()
            if live >= BOTS_PER_OWNER:
                raise InvalidParameterError(f"at most {BOTS_PER_OWNER} bots per owner")
            if user_id is not None and await User.filter(id=user_id).exists():
                raise UserExistsError("a user with this id already exists")
            user = await User.create(id=user_id or new_user_id(), name=name,
                                     password_hash=password_hash)
            bot = await Bot.create(user_id=user.id, owner_id=owner_id)
            issued = await _issue(user.id)
    except IntegrityError as exc:  # a concurrent registration took the id
        raise UserExistsError("a user with this id already exists") from exc
    return CreatedBot(user, bot, issued)


async def managed_bot(caller_id: str, bot_id: str, *, admin: bool) -> Bot:
    """The live bot `bot_id` if `caller_id` owns it or is a server admin; NotFoundError (1005)
    to anyone else, so nobody learns which bots exist."""
    bot = await Bot.get_or_none(user_id=check_id_ref(bot_id, "bot_id"), user__deleted_at=None)
    if bot is None or (bot.owner_id != caller_id and not admin):
        raise NotFoundError(f"bot {bot_id} not found")
    return bot


async def list_bots(owner_id: str) -> list[BotListing]:
    """The owner's live bots, oldest first, each with all its tokens (newest first)."""
    bots = await Bot.filter(owner_id=owner_id, user__deleted_at=None).order_by(
        "created_at", "id").prefetch_related("user")
    tokens: dict[str, list[BotToken]] = {b.user_id: [] for b in bots}
    for row in await BotToken.filter(bot_id__in=list(tokens)).order_by("-created_at", "-id"):
        tokens[row.bot_id].append(row)
    return [BotListing(b.user, b, tokens[b.user_id]) for b in bots]


async def revoke_tokens(bot_id: str, *, reissue: bool) -> tuple[Revoked, IssuedToken | None]:
    """Revoke every live token of the bot and end its live sessions (returned, to kick);
    with `reissue`, a new token in the same transaction."""
    now = utcnow()
    async with in_transaction():
        count = await BotToken.filter(bot_id=bot_id, revoked_at=None).update(revoked_at=now)
        ended = await end_live_sessions(bot_id, TOKEN_REVOKED)
        issued = await _issue(bot_id) if reissue else None
    return Revoked(bot_id, count, ended), issued


async def token_user(token: str) -> User:
    """The bot a live token belongs to: TokenInvalidError (2001) for an unknown or revoked token
    or a deleted bot, AccountBannedError (2009) for a banned one. Marks the token used (at most
    once a minute)."""
    if not token.startswith(TOKEN_PREFIX) or has_bad_chars(token) or len(token) > 200:
        raise TokenInvalidError("bot token invalid")
    row = await BotToken.get_or_none(token_hash=hash_token(token), revoked_at=None)
    user = None if row is None else await User.get_or_none(id=row.bot_id, deleted_at=None)
    if row is None or user is None:
        raise TokenInvalidError("bot token invalid or revoked")
    if user.banned_at is not None:
        raise AccountBannedError("this account is banned")
    now = utcnow()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
        await BotToken.filter(id=row.id).update(last_used_at=now)
    return user


async def start_bot_session(user: User, refresh_ttl: int) -> tuple[LoginSession, str,
                                                                   list[LoginSession]]:
    """A login session on platform "bot" (as models.session.start_session opens for people,
    whose platforms exclude "bot"): the session, its refresh token, and the older bot session
    it replaced (to kick)."""
    secret = new_refresh_secret()
    now = utcnow()
    async with in_transaction():
        older = list(await LoginSession.filter(user_id=user.id, platform=BOT_PLATFORM,
                                               ended_at=None))
        if older:
            await LoginSession.filter(id__in=[s.id for s in older]).update(
                ended_at=now, end_reason=EndReason.REPLACED)
        session = await LoginSession.create(
            id=new_session_id(), user=user, platform=BOT_PLATFORM,
            refresh_hash=hash_refresh_secret(secret),
            expires_at=now + timedelta(seconds=refresh_ttl))
    return session, f"{session.id}.{secret}", older
