"""Profile changes: what a user may change about their account (name, avatar, bio, extra data,
email, password), the rules each field obeys, and the write. A new password ends the user's other
login sessions in the same transaction and returns them, for the use case to tell the devices
and the broker after the commit. How a profile is shown is not this module's business.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from contract.errors import InvalidParameterError, LoginFailedError, UserExistsError
from models.clock import utcnow
from models.password import check_password_policy, hash_password, verify_password
from models.session import EndReason, LoginSession, end_live_sessions
from models.upload import UPLOAD_PATH
from models.user import (
    LONE_SURROGATE,
    TEXT_CONTROLS,
    AccountRules,
    User,
    check_email,
    check_name,
    check_text,
    get_user,
    has_bad_chars,
)
from models.verification import consume_code

AVATAR_URL_MAX = 1024
BIO_MAX = 500
EXTRA_MAX_BYTES = 4096


def _check_avatar_url(url: str) -> str:
    if UPLOAD_PATH.fullmatch(url):  # PUT /api/me/avatar: an upload of ours
        return url
    parts = urlsplit(url)
    if (len(url) > AVATAR_URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc
            or any(c.isspace() for c in url) or has_bad_chars(url)):
        raise InvalidParameterError(
            f"avatar_url must be an http(s) URL of at most {AVATAR_URL_MAX} characters, "
            "or an upload's /api/uploads/{upload_id}"
        )
    return url


def _check_extra(extra: Any) -> Any:
    if extra is None:
        return None
    if not isinstance(extra, dict):
        raise InvalidParameterError("extra must be a JSON object")
    if _has_unstorable(extra):
        raise InvalidParameterError("extra must not contain NUL characters or lone surrogates")
    size = len(json.dumps(extra, separators=(",", ":"), ensure_ascii=False).encode())
    if size > EXTRA_MAX_BYTES:
        raise InvalidParameterError(f"extra must be at most {EXTRA_MAX_BYTES} bytes of JSON")
    return extra


def _has_unstorable(value: Any) -> bool:
    """Whether a JSON value holds, in any key or string, what PostgreSQL's jsonb cannot store
    (`\\u0000`) or what is not UTF-8 (a lone surrogate). Other control characters are the
    client's own data here."""
    if isinstance(value, str):
        return "\0" in value or bool(LONE_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_unstorable(k) or _has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable(v) for v in value)
    return False


async def check_profile_update(
    user: User,
    changes: Mapping[str, Any],
    *,
    current_password: str | None,
    code: str | None,
    rules: AccountRules,
) -> dict[str, Any]:
    """Validate and authorise a profile change; the column values to write (only changed ones).

    `changes` holds the fields the client sent: `name`, `avatar_url`, `bio`, `extra`, `email`,
    `password` (None clears the optional ones). A new password or email needs
    `current_password`; a new email must be free, and needs a `change_email` code for it when
    `rules.require_email_code` (a valid code marks it verified; without one it is unverified).
    """
    updates: dict[str, Any] = {}
    if "name" in changes:
        if changes["name"] is None:
            raise InvalidParameterError("name cannot be removed")
        updates["name"] = check_name(changes["name"])
    if "avatar_url" in changes:
        url = changes["avatar_url"]
        updates["avatar_url"] = None if url in (None, "") else _check_avatar_url(url)
    if "bio" in changes:
        bio = changes["bio"]
        if bio is not None and len(bio) > BIO_MAX:
            raise InvalidParameterError(f"bio must be at most {BIO_MAX} characters")
        if bio is not None:
            check_text(bio, "bio", TEXT_CONTROLS)
        updates["bio"] = bio
    if "extra" in changes:
        updates["extra"] = _check_extra(changes["extra"])
    new_password = changes.get("password")
    if "password" in changes and new_password is None:
        raise InvalidParameterError("password cannot be removed")
    if new_password is not None:
        check_password_policy(new_password)
    new_email = user.email
    if "email" in changes:
        new_email = check_email(changes["email"]) if changes["email"] else None
    email_changes = new_email != user.email
    if email_changes and new_email is not None and await User.filter(email=new_email).exists():
        raise UserExistsError("a user with this email already exists")
    if new_password is not None or email_changes:
        if current_password is None:
            raise InvalidParameterError("current_password is required to change the "
                                        + ("password" if new_password is not None else "email"))
        if not await verify_password(current_password, user.password_hash):
            raise LoginFailedError("current_password is wrong")
    if email_changes:
        updates["email"], updates["email_verified_at"] = new_email, None
        if new_email is not None and (code is not None or rules.require_email_code):
            if code is None:
                raise InvalidParameterError(
                    "code is required to change the email: request one for the new address "
                    "with POST /api/auth/verify-code, purpose 'change_email'"
                )
            await consume_code(new_email, ("change_email",), code, secret=rules.code_secret)
            updates["email_verified_at"] = utcnow()
    if new_password is not None:
        updates["password_hash"] = await hash_password(new_password, rules.bcrypt_rounds)
    return {k: v for k, v in updates.items()
            if k in ("password_hash", "email_verified_at") or getattr(user, k) != v}


@dataclass(frozen=True)
class ProfileUpdate:
    user: User
    changed: frozenset[str]  # the columns written
    ended: list[LoginSession]  # the other sessions a password change ended


async def update_profile(
    user_id: str,
    session_id: str,
    changes: Mapping[str, Any],
    *,
    current_password: str | None = None,
    code: str | None = None,
    rules: AccountRules,
) -> ProfileUpdate:
    """Apply a profile change (rules in `check_profile_update`). A new password ends every
    other live session of the user in the same transaction."""
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
                    ended = await end_live_sessions(user_id, EndReason.PASSWORD_CHANGED,
                                                    keep=session_id)
        except IntegrityError as exc:  # a concurrent change took the email first
            raise UserExistsError("a user with this email already exists") from exc
        await user.refresh_from_db()
    return ProfileUpdate(user, frozenset(updates), ended)
