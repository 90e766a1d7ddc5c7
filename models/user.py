"""Users: the account table, the rules names, ids, emails and phones obey, and lookups.

A deleted account is only marked (`deleted_at`) and stays here until `mqim users purge`; the
account's lifecycle (register, restore, delete, ban, purge) is in `models/account.py`, profile
changes in `models/profile.py`, passwords in `models/password.py`. This module builds no wire
shapes: how a user is shown (own view, public profile, "Deleted user") is the use cases' job.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from tortoise import fields
from tortoise.models import Model

from config import Settings
from contract.errors import InvalidParameterError, UserNotFoundError
from models.clock import utcnow
from models.ids import UserId
from models.verification import normalise_email

NAME_MAX = 20
DELETED_NAME = "Deleted user"
PHONE_RE = re.compile(r"\+?[0-9]{6,20}")
# Multi-line free text (bio, a friend request's message) may keep these control characters.
TEXT_CONTROLS = "\t\n\r"
# Half of a UTF-16 pair on its own: JSON can carry one (`"\ud800"`), UTF-8 cannot.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class User(Model):
    id = fields.CharField(primary_key=True, max_length=64)
    email = fields.CharField(max_length=254, unique=True, null=True)
    phone = fields.CharField(max_length=32, unique=True, null=True)
    name = fields.CharField(max_length=NAME_MAX)
    password_hash = fields.CharField(max_length=100)
    avatar_url = fields.CharField(max_length=1024, null=True)
    bio = fields.CharField(max_length=500, null=True)  # the seeds' "user_info"
    extra: Any = fields.JSONField(null=True)  # free-form client data, at most a few KiB
    email_verified_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    deleted_at = fields.DatetimeField(null=True)
    # Admins may ban users and tune broker ACL rules.
    is_admin = fields.BooleanField(default=False)
    banned_at = fields.DatetimeField(null=True)

    class Meta:
        table = "user_account"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True)
class AccountRules:
    """The settings the account operations obey, so they need no Settings object."""

    bcrypt_rounds: int = 12
    # Keys the hash of verification codes (models/verification.py).
    code_secret: str = ""
    require_email_code: bool = False
    email_code_interval: int = 60
    restore_window: timedelta = timedelta(days=30)

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountRules:
        return cls(
            bcrypt_rounds=settings.bcrypt_rounds, code_secret=settings.jwt_secret,
            require_email_code=settings.require_email_code,
            email_code_interval=settings.email_code_interval,
            restore_window=timedelta(days=settings.restore_window_days),
        )

    def restorable(self, user: User) -> bool:
        """A deleted account still inside its restore window."""
        return user.deleted_at is not None and user.deleted_at > utcnow() - self.restore_window


def has_bad_chars(value: str, allowed: str = "") -> bool:
    """True if `value` holds a control character (Unicode category Cc: NUL, newline, escape,
    DEL, ...) other than those in `allowed`, or a lone surrogate. Such characters make names
    and ids that look like others, break the logs and lines they are printed in, and some no
    database can store (NUL in PostgreSQL text; a lone surrogate is not UTF-8 at all)."""
    return bool(LONE_SURROGATE.search(value)) or any(
        unicodedata.category(c) == "Cc" and c not in allowed for c in value)


def check_text(value: str, field: str, allowed: str = "") -> str:
    """`value`, or InvalidParameterError (1001) when it has characters `has_bad_chars` refuses."""
    if has_bad_chars(value, allowed):
        raise InvalidParameterError(
            f"{field} must not contain control characters"
            + (" other than tab and line breaks" if allowed else "")
        )
    return value


def check_id_ref(value: str, field: str = "user_id") -> str:
    """An id the client names (to look up, not to create): no id holds a control character,
    and refusing them here keeps a NUL from ever reaching the database."""
    return check_text(value, field)


def check_name(name: str) -> str:
    name = check_text(name, "name").strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidParameterError(f"name must be 1 to {NAME_MAX} characters")
    return name


def check_email(email: str) -> str:
    """Lower-cased and checked (InvalidParameterError, 1001)."""
    # The address pattern refuses whitespace but not other control characters such as NUL.
    return normalise_email(check_text(email, "email"))


def check_phone(phone: str) -> str:
    """Without spaces, dashes and brackets, and checked (InvalidParameterError, 1001)."""
    phone = re.sub(r"[\s()-]", "", check_text(phone, "phone"))
    # fullmatch: `$` would also accept a trailing newline.
    if not PHONE_RE.fullmatch(phone):
        raise InvalidParameterError(f"phone {phone!r} is not valid")
    return phone


async def find_login(login: str) -> User | None:
    """The user, live or deleted (not purged), whose id, email or phone is `login`."""
    login = login.strip()
    if not login or has_bad_chars(login):
        return None  # nobody's id, email or phone; a NUL must not reach the database
    if "@" in login and await User.filter(email=login.lower()).exists():
        return await User.get(email=login.lower())
    user = await User.get_or_none(id=login)
    phone = re.sub(r"[\s()-]", "", login)
    if user is None and PHONE_RE.fullmatch(phone):
        user = await User.get_or_none(phone=phone)
    return user


async def get_user(user_id: str) -> User:
    user = await User.get_or_none(id=check_id_ref(user_id), deleted_at=None)
    if user is None:
        raise UserNotFoundError(f"user {user_id} not found")
    return user


async def set_admin(user_id: str, is_admin: bool) -> User:
    user = await get_user(user_id)
    user.is_admin = is_admin
    await user.save(update_fields=["is_admin"])
    return user


async def check_users_exist(user_ids: list[str]) -> list[UserId]:
    """Deduplicated ids, all of live users; UserNotFoundError names the first missing one."""
    wanted = [check_id_ref(u) for u in dict.fromkeys(user_ids)]
    found = set(cast(list[str], await User.filter(id__in=wanted, deleted_at=None).values_list(
        "id", flat=True)))
    for uid in wanted:
        if uid not in found:
            raise UserNotFoundError(f"user {uid} not found")
    return [UserId(u) for u in wanted]

