"""Accounts: registering (or restoring a deleted account), the login check, verification-code
requests, deleting, purging and banning. Each change is one transaction; those that end login
sessions (delete, ban) end them in it and return them, for the use case to tell the devices and
the broker after the commit. Profile changes are in `models/profile.py`.

A deleted account is only marked (`deleted_at`): within the restore window, logging in or
registering again with its password brings it back as it was; after the window it waits for
`mqim users purge` (`purge_deleted_users`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from contract.errors import (
    AccountBannedError,
    InvalidParameterError,
    LoginFailedError,
    UserExistsError,
    UserNotFoundError,
)
from models.aclrule import AclRule
from models.clock import utcnow
from models.ids import RESERVED_IDS, is_valid_id, new_user_id
from models.password import check_password_policy, dummy_hash, hash_password, verify_password
from models.presence import Presence
from models.session import EndReason, LoginSession, end_live_sessions
from models.user import (
    AccountRules,
    User,
    check_email,
    check_id_ref,
    check_name,
    check_phone,
    find_login,
    has_bad_chars,
)
from models.verification import VerificationCode, consume_code


@dataclass(frozen=True)
class SignIn:
    """The outcome of registering or logging in."""

    user: User
    # True when the request brought a deleted account back (instead of creating one).
    restored: bool


async def _holders(**identifiers: str | None) -> dict[str, User]:
    """Which (live or deleted, not purged) user holds each given identifier."""
    found: dict[str, User] = {}
    for field, value in identifiers.items():
        if value is not None:
            user = await User.filter(**{field: value}).first()
            if user is not None:
                found[field] = user
    return found


async def register_user(
    *,
    name: str,
    password: str,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    code: str | None = None,
    rules: AccountRules | None = None,
) -> SignIn:
    """Create a user, or restore the deleted account these identifiers belong to.

    A new account with an email needs a `register` code for it when `rules.require_email_code`;
    a valid code (required or not) marks the email verified. Restoring needs the account's
    password and happens only inside the restore window (see `_restore`). Raises
    UserExistsError when an identifier is taken by a live account, by a deleted one (with the
    wrong password), or by one past its window and not yet purged.
    """
    rules = rules or AccountRules()
    name = check_name(name)
    if user_id is not None and (has_bad_chars(user_id) or not is_valid_id(user_id)):
        raise InvalidParameterError(
            "user_id must be 1-64 letters, digits, '_', '-' or '.', start with a letter or "
            "digit, not start with 'mqim-', and not be a reserved word "
            f"({', '.join(sorted(RESERVED_IDS))})"
        )
    email = check_email(email) if email else None
    phone = check_phone(phone) if phone else None
    check_password_policy(password)
    taken = await _holders(id=user_id, email=email, phone=phone)
    if taken:
        return await _register_over(taken, password, code, rules)
    verified_at = None
    if email is not None and (code is not None or rules.require_email_code):
        if code is None:
            raise InvalidParameterError(
                "code is required with an email: request one with POST /api/auth/verify-code"
            )
        await consume_code(email, ("register",), code, secret=rules.code_secret)
        verified_at = utcnow()
    password_hash = await hash_password(password, rules.bcrypt_rounds)
    try:
        async with in_transaction():
            for field, value in (("id", user_id), ("email", email), ("phone", phone)):
                if value is not None and await User.filter(**{field: value}).exists():
                    raise UserExistsError(f"a user with this {field} already exists")
            user = await User.create(
                id=user_id or new_user_id(),
                name=name,
                email=email,
                phone=phone,
                password_hash=password_hash,
                email_verified_at=verified_at,
            )
    except IntegrityError as exc:  # a concurrent registration won the race
        raise UserExistsError("a user with this id, email or phone already exists") from exc
    return SignIn(user, restored=False)


async def _register_over(
    taken: dict[str, User], password: str, code: str | None, rules: AccountRules
) -> SignIn:
    """Registering with identifiers someone holds: restore when that is one deleted account of
    this password, inside its window; UserExistsError otherwise."""
    field, user = next(iter(taken.items()))
    if len({u.id for u in taken.values()}) > 1 or not user.is_deleted:
        raise UserExistsError(f"a user with this {field} already exists")
    if not rules.restorable(user):
        raise UserExistsError(
            f"this {field} belongs to a deleted account past its restore window; it can be "
            "registered again once the account is purged"
        )
    if not await verify_password(password, user.password_hash):
        raise UserExistsError(
            f"this {field} belongs to a deleted account; register with its password to "
            "restore it"
        )
    await _restore(user, code, ("restore", "register"), rules)
    return SignIn(user, restored=True)


async def _restore(
    user: User, code: str | None, purposes: tuple[str, ...], rules: AccountRules
) -> None:
    """Clear `deleted_at`. With `require_email_code`, an account with an email needs a code
    sent to it (one of `purposes`); a valid code marks the email verified."""
    updates: dict[str, Any] = {"deleted_at": None}
    if user.email is not None and (code is not None or rules.require_email_code):
        if code is None:
            raise InvalidParameterError(
                "code is required to restore this deleted account: request one for its email "
                "with POST /api/auth/verify-code, purpose 'restore'"
            )
        await consume_code(user.email, purposes, code, secret=rules.code_secret)
        updates["email_verified_at"] = utcnow()
    await User.filter(id=user.id).exclude(deleted_at=None).update(**updates)
    try:
        await user.refresh_from_db()
    except DoesNotExist as exc:  # purged meanwhile
        raise UserNotFoundError(f"user {user.id} not found") from exc


async def authenticate_user(
    login: str, password: str, *, code: str | None = None, rules: AccountRules | None = None
) -> SignIn:
    """The user if `password` matches; LoginFailedError otherwise (same error for unknown users).

    A banned account gets AccountBannedError. A deleted account is restored inside its restore
    window (`restored` is then True; see `_restore` for the code it may need) and gets
    UserNotFoundError after it: both only once the password matched, so a stranger learns
    nothing.
    """
    rules = rules or AccountRules()
    user = await find_login(login)
    # Every login that reaches here pays for one bcrypt check at the configured cost, known
    # user or not (and banned or deleted ones are only told so after it).
    hashed = user.password_hash if user else await dummy_hash(rules.bcrypt_rounds)
    ok = await verify_password(password, hashed)
    if user is None or not ok:
        raise LoginFailedError("wrong login or password")
    if user.banned_at is not None:
        raise AccountBannedError("this account is banned")
    if not user.is_deleted:
        return SignIn(user, restored=False)
    if not rules.restorable(user):
        raise UserNotFoundError("this account was deleted")
    await _restore(user, code, ("restore",), rules)
    return SignIn(user, restored=True)


async def check_code_request(email: str, purpose: str) -> str:
    """Who may be sent a code: the normalised email, or UserExistsError when it is pointless
    (registering an address a live account holds; moving to an address anyone holds)."""
    email = check_email(email)
    holder = await User.get_or_none(email=email)
    if holder is not None and (purpose == "change_email" or (
            purpose == "register" and not holder.is_deleted)):
        raise UserExistsError("a user with this email already exists")
    return email


async def delete_account(user_id: str) -> tuple[User, list[LoginSession]]:
    """Mark the account deleted and end all its live sessions (returned).

    Nothing else is removed, so restoring (`_restore`) brings the account back as it was;
    `purge_deleted_users` removes it for good after the restore window.
    """
    now = utcnow()
    async with in_transaction():
        if not await User.filter(id=user_id, deleted_at=None).update(deleted_at=now):
            raise UserNotFoundError(f"user {user_id} not found")
        live = await end_live_sessions(user_id, EndReason.DELETED)
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
        return await end_live_sessions(user_id, EndReason.BANNED)
