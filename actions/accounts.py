"""Accounts: registering (or restoring), logging in, mailing verification codes, the owner's
profile (read, change) and deleting the account.

    register(ctx, signup, platform)        -> SignedIn (a new session)
    login(ctx, login, password, ...)       -> SignedIn
    send_code(ctx, mailer, email, purpose) -> CodeSent
    own_profile(user_id)                   -> UserSelf
    change_profile(ctx, ...)               -> UserSelf (`user_updated` to own devices, friends)
    delete_account(ctx, user_id)           -> AccountDeleted (every session kicked)

Login attempts count against the abuse limits here, before the password is checked. The limits
that guard a route before its body is even read (register, verify-code) are the route's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from actions.context import Context
from actions.profiles import user_profile, user_self
from actions.sessions import kick, open_session
from broker.link.publisher import Event
from contract.accounts import AccountDeleted, CodeSent, SignedIn
from contract.errors import MailFailedError
from contract.events import UserUpdatedEvent
from contract.http import UserSelf
from models import account
from models.bots import is_bot
from models.friendship import friend_ids
from models.profile import update_profile
from models.session import EndReason, normalise_platform
from models.user import AccountRules, User, get_user
from models.verification import CODE_TTL, discard_code, issue_code

MAIL_SUBJECT = "Your mqim verification code"
_PURPOSE_TEXT = {
    "register": "to create your account",
    "change_email": "to use this address for your account",
    "restore": "to restore your deleted account",
}


class MailSender(Protocol):
    """What sends the codes (SMTP, or the log in development); MailFailedError when it cannot."""

    async def send(self, to: str, subject: str, text: str) -> None: ...


@dataclass(frozen=True)
class SignUp:
    """What a client registers with (see `models.account.register_user`)."""

    name: str
    password: str
    user_id: str | None = None
    email: str | None = None
    phone: str | None = None
    code: str | None = None


async def register(ctx: Context, signup: SignUp, platform: str | int) -> SignedIn:
    """A new account, or the deleted one these identifiers and password belong to (`restored`),
    signed in on `platform`."""
    platform = normalise_platform(platform)  # before anything is stored
    signed = await account.register_user(
        name=signup.name, password=signup.password, user_id=signup.user_id, email=signup.email,
        phone=signup.phone, code=signup.code, rules=AccountRules.from_settings(ctx.settings),
    )
    return await open_session(ctx, signed, platform)


async def login(
    ctx: Context, login: str, password: str, platform: str | int, *, code: str | None,
    client: str | None,
) -> SignedIn:
    """Sign in with an id, email or phone, from the client address `client`; a deleted account
    inside its restore window comes back (`restored`)."""
    platform = normalise_platform(platform)  # before a deleted account is restored
    # Every attempt counts, known account or not, before the password is checked: past the
    # limit even the right password is refused, so guessing cannot go on.
    await ctx.limits.hit_login(login, client)
    signed = await account.authenticate_user(login, password, code=code,
                                             rules=AccountRules.from_settings(ctx.settings))
    await ctx.limits.login_succeeded(login)
    return await open_session(ctx, signed, platform)


async def send_code(ctx: Context, mailer: MailSender, email: str, purpose: str) -> CodeSent:
    """Mail a 6-digit code; the answer never carries it. A code that could not be mailed is
    forgotten, so it does not hold the per-email interval."""
    settings = ctx.settings
    email = await account.check_code_request(email, purpose)
    issued = await issue_code(email, purpose, secret=settings.jwt_secret,
                              interval=settings.email_code_interval)
    minutes = int(CODE_TTL.total_seconds()) // 60
    text = (f"Your mqim verification code is {issued.code}\n\n"
            f"Enter it {_PURPOSE_TEXT[purpose]}. It expires in {minutes} minutes.\n"
            "If you did not ask for it, ignore this mail.\n")
    try:
        await mailer.send(email, MAIL_SUBJECT, text)
    except MailFailedError:
        await discard_code(issued.id)
        raise
    return CodeSent(email=email, purpose=purpose, expires_in=int(CODE_TTL.total_seconds()),
                    resend_after=settings.email_code_interval)


async def own_profile(user_id: str) -> UserSelf:
    return user_self(await get_user(user_id), is_bot=await is_bot(user_id))


async def change_profile(
    ctx: Context, user_id: str, session_id: str, changes: Mapping[str, Any], *,
    current_password: str | None, code: str | None,
) -> UserSelf:
    """Apply a profile change (rules in `models.profile`). A new password kicks the user's
    other sessions; any other change reaches their devices and friends as `user_updated`."""
    update = await update_profile(
        user_id, session_id, changes, current_password=current_password, code=code,
        rules=AccountRules.from_settings(ctx.settings),
    )
    await kick(ctx, user_id, [s.id for s in update.ended], EndReason.PASSWORD_CHANGED)
    bot = await is_bot(user_id)
    if update.changed - {"password_hash"}:
        await ctx.publish(_user_updated(ctx, update.user, await friend_ids(user_id), bot))
    return user_self(update.user, is_bot=bot)


def _user_updated(ctx: Context, user: User, friend_ids: Sequence[str], bot: bool) -> list[Event]:
    """`user_updated` to the user's own devices (with their own view: email, phone) and to each
    friend (with the public profile)."""
    public = UserUpdatedEvent(type="user_updated", user=user_profile(user, is_bot=bot))
    own = UserUpdatedEvent(type="user_updated", user=user_self(user, is_bot=bot))
    return [(ctx.topics.user(user.id), own),
            *((ctx.topics.user(fid), public) for fid in friend_ids)]


async def delete_account(ctx: Context, user_id: str) -> AccountDeleted:
    """Soft-delete: every session ends (the caller's too); restorable within the window."""
    user, ended = await account.delete_account(user_id)
    await kick(ctx, user_id, [s.id for s in ended], EndReason.DELETED)
    assert user.deleted_at is not None  # noqa: S101  # delete_account just set it
    window = timedelta(days=ctx.settings.restore_window_days)
    return AccountDeleted(id=user.id, deleted=True,
                          restore_until=(user.deleted_at + window).isoformat())
