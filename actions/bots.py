"""Bot accounts (docs/bots.md): creating, listing, re-keying and deleting bots, and a bot
signing in with its API token.

    create(ctx, owner_id, name, user_id)      -> BotCreated
    list_own(owner_id)                        -> [BotView]
    rotate_token(ctx, caller_id, bot_id)      -> BotTokenIssued   (sessions ended, kicked)
    revoke_tokens(ctx, caller_id, bot_id)     -> BotTokensRevoked (sessions ended, kicked)
    delete(ctx, caller_id, bot_id)            -> AccountDeleted   (the account deletion path)
    sign_in(ctx, token)                       -> SignedIn         (a login session, "bot")

A bot is a user: once signed in it sends, reads and connects over MQTT through the same code,
ACLs and limits as anyone. Only its owner or a server admin manages it (1005 to others).
"""

from __future__ import annotations

from datetime import datetime

from actions import accounts
from actions.context import Context
from actions.profiles import user_profile, user_self
from actions.sessions import kick
from contract.accounts import AccountDeleted, MqttCredentials, SignedIn
from contract.bots import BotCreated, BotTokenIssued, BotTokensRevoked, BotTokenView, BotView
from models import bots
from models.bot import BotToken
from models.session import EndReason
from models.tokens import issue_access_token
from models.user import get_user


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _token_view(row: BotToken) -> BotTokenView:
    return BotTokenView(prefix=row.prefix, created_at=row.created_at.isoformat(),
                        last_used_at=_iso(row.last_used_at), revoked_at=_iso(row.revoked_at))


async def create(ctx: Context, owner_id: str, name: str, user_id: str | None) -> BotCreated:
    created = await bots.create_bot(owner_id, name, user_id,
                                    bcrypt_rounds=ctx.settings.bcrypt_rounds)
    return BotCreated(bot=user_profile(created.user, is_bot=True), token=created.token.token)


async def list_own(owner_id: str) -> list[BotView]:
    return [BotView(bot=user_profile(b.user, is_bot=True), owner_id=b.bot.owner_id,
                    created_at=b.bot.created_at.isoformat(),
                    tokens=[_token_view(t) for t in b.tokens])
            for b in await bots.list_bots(owner_id)]


async def _managed(caller_id: str, bot_id: str) -> str:
    """The bot's id, if the caller may manage it (models.bots.managed_bot)."""
    admin = (await get_user(caller_id)).is_admin
    return (await bots.managed_bot(caller_id, bot_id, admin=admin)).user_id


async def rotate_token(ctx: Context, caller_id: str, bot_id: str) -> BotTokenIssued:
    """A new token; the older ones stop working and the bot's devices are kicked."""
    bot_id = await _managed(caller_id, bot_id)
    revoked, issued = await bots.revoke_tokens(bot_id, reissue=True)
    await kick(ctx, bot_id, [s.id for s in revoked.ended], bots.TOKEN_REVOKED)
    assert issued is not None  # noqa: S101  # reissue=True
    return BotTokenIssued(bot_id=bot_id, token=issued.token, prefix=issued.row.prefix,
                          revoked=revoked.revoked)


async def revoke_tokens(ctx: Context, caller_id: str, bot_id: str) -> BotTokensRevoked:
    """Every token revoked: the bot cannot sign in until its owner issues a new one."""
    bot_id = await _managed(caller_id, bot_id)
    revoked, _ = await bots.revoke_tokens(bot_id, reissue=False)
    await kick(ctx, bot_id, [s.id for s in revoked.ended], bots.TOKEN_REVOKED)
    return BotTokensRevoked(bot_id=bot_id, revoked=revoked.revoked,
                            sessions_ended=len(revoked.ended))


async def delete(ctx: Context, caller_id: str, bot_id: str) -> AccountDeleted:
    """The bot's account deleted as any account is (every session kicked); its tokens then
    resolve to nobody (models.bots.token_user refuses deleted accounts)."""
    return await accounts.delete_account(ctx, await _managed(caller_id, bot_id))


async def sign_in(ctx: Context, token: str) -> SignedIn:
    """What logging in answers, for a bot's API token: a login session on platform "bot" (an
    older one ends, as a new login on a platform ends the older one)."""
    user = await bots.token_user(token)
    session, refresh_token, older = await bots.start_bot_session(
        user, ctx.settings.refresh_token_ttl)
    await kick(ctx, user.id, [s.id for s in older], EndReason.REPLACED)
    settings = ctx.settings
    access = issue_access_token(settings.jwt_secret, user.id, session.id,
                                settings.access_token_ttl)
    return SignedIn(
        token=access, expires_in=settings.access_token_ttl, refresh_token=refresh_token,
        session_id=session.id, user=user_self(user, is_bot=True), restored=False,
        mqtt=MqttCredentials(username=user.id, password=access, client_id=session.mqtt_client_id,
                             topic_prefix=settings.topic_prefix),
    )
