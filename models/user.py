"""Users: registration, password checks and lookup. Passwords are bcrypt hashes, never stored plain.

bcrypt is deliberately slow (tens to hundreds of ms), so hashing runs in a worker thread and never
blocks the event loop that also carries the broker and the bridge.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

import bcrypt
from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.errors import (
    AccountBannedError,
    InvalidParameterError,
    LoginFailedError,
    UserExistsError,
    UserNotFoundError,
)
from models.ids import UserId, is_valid_id, new_user_id

NAME_MAX = 20
PASSWORD_MIN = 8
PASSWORD_MAX = 72  # bcrypt ignores bytes past 72; refuse rather than silently truncate
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")
# A hash of a random password: comparing against it when the user is unknown keeps the response
# time of "no such user" equal to "wrong password".
_DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds=4))


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

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "created_at": self.created_at.isoformat(),
        }


def check_password_policy(password: str) -> None:
    size = len(password.encode())
    if size < PASSWORD_MIN or size > PASSWORD_MAX:
        raise InvalidParameterError(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes long"
        )
    if password.isdigit() or password.isalpha():
        raise InvalidParameterError("password must mix letters with digits or symbols")


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL_RE.match(email):
        raise InvalidParameterError(f"email {email!r} is not valid")
    return email


def _normalise_phone(phone: str) -> str:
    phone = re.sub(r"[\s()-]", "", phone)
    if not _PHONE_RE.match(phone):
        raise InvalidParameterError(f"phone {phone!r} is not valid")
    return phone


async def hash_password(password: str, rounds: int) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(rounds))
    return hashed.decode()


async def verify_password(password: str, hashed: str) -> bool:
    return await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed.encode())


async def register_user(
    *,
    name: str,
    password: str,
    user_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    bcrypt_rounds: int = 12,
) -> User:
    """Create a user; raises UserExistsError if the id, email or phone is taken."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidParameterError(f"name must be 1 to {NAME_MAX} characters")
    if user_id is not None and not is_valid_id(user_id):
        raise InvalidParameterError(
            "user_id must be 1-64 letters, digits, '_', '-', '.' or '@', "
            "start with a letter or digit, and not start with 'mqim-'"
        )
    email = _normalise_email(email) if email else None
    phone = _normalise_phone(phone) if phone else None
    check_password_policy(password)
    password_hash = await hash_password(password, bcrypt_rounds)
    try:
        async with in_transaction():
            for field, value in (("id", user_id), ("email", email), ("phone", phone)):
                if value is not None and await User.filter(**{field: value}).exists():
                    raise UserExistsError(f"a user with this {field} already exists")
            return await User.create(
                id=user_id or new_user_id(),
                name=name,
                email=email,
                phone=phone,
                password_hash=password_hash,
            )
    except IntegrityError as exc:  # a concurrent registration won the race
        raise UserExistsError("a user with this id, email or phone already exists") from exc


async def find_login(login: str) -> User | None:
    """The live user whose id, email or phone is `login`."""
    login = login.strip()
    query = User.filter(deleted_at=None)
    if "@" in login and await query.filter(email=login.lower()).exists():
        return await query.get(email=login.lower())
    user = await query.get_or_none(id=login)
    if user is None and _PHONE_RE.match(re.sub(r"[\s()-]", "", login)):
        user = await query.get_or_none(phone=re.sub(r"[\s()-]", "", login))
    return user


async def authenticate_user(login: str, password: str) -> User:
    """The user if `password` matches; LoginFailedError otherwise (same error for unknown users)."""
    user = await find_login(login)
    ok = await verify_password(password, user.password_hash if user else _DUMMY_HASH.decode())
    if user is None or not ok:
        raise LoginFailedError("wrong login or password")
    if user.banned_at is not None:
        raise AccountBannedError("this account is banned")
    return user


async def get_user(user_id: str) -> User:
    user = await User.get_or_none(id=user_id, deleted_at=None)
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
    wanted = list(dict.fromkeys(user_ids))
    found = set(cast(list[str], await User.filter(id__in=wanted, deleted_at=None).values_list(
        "id", flat=True)))
    for uid in wanted:
        if uid not in found:
            raise UserNotFoundError(f"user {uid} not found")
    return [UserId(u) for u in wanted]

