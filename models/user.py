"""Users: registration (and restoring a deleted account), login checks, the profile, lookup.

Passwords are bcrypt hashes, never stored plain. bcrypt is deliberately slow (tens to hundreds of
ms), so hashing runs in a worker thread and never blocks the event loop that also carries the
broker and the bridge.

A deleted account is only marked (`deleted_at`): within the restore window, logging in or
registering again with its password brings it back as it was; after the window it waits for
`mqim users purge` (`models/session.py::purge_deleted_users`). Ending sessions is not done here
but in `models/session.py`, which knows both.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import bcrypt
from tortoise import fields
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from config import Settings
from contract.errors import (
    AccountBannedError,
    InvalidParameterError,
    LoginFailedError,
    UserExistsError,
    UserNotFoundError,
)
from models.clock import utcnow
from models.ids import RESERVED_IDS, UserId, is_valid_id, new_user_id
from models.verification import consume_code, normalise_email

NAME_MAX = 20
PASSWORD_MIN = 8
PASSWORD_MAX = 72  # bcrypt ignores bytes past 72; refuse rather than silently truncate
AVATAR_URL_MAX = 1024
BIO_MAX = 500
EXTRA_MAX_BYTES = 4096
DELETED_NAME = "Deleted user"
_PHONE_RE = re.compile(r"\+?[0-9]{6,20}")
# Multi-line free text (bio, a friend request's message) may keep these control characters.
TEXT_CONTROLS = "\t\n\r"
# Half of a UTF-16 pair on its own: JSON can carry one (`"\ud800"`), UTF-8 cannot.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Hashes of a random password, one per bcrypt cost, made on first use (`_dummy_hash`).
_DUMMY_HASHES: dict[int, str] = {}


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

    def public(self) -> dict[str, object]:
        """The owner's own view (GET /api/me, the login bundle): includes email and phone."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "avatar_url": self.avatar_url,
            "bio": self.bio,
            "extra": self.extra,
            "email_verified_at": _iso(self.email_verified_at),
            "created_at": self.created_at.isoformat(),
        }

    def profile(self) -> dict[str, object]:
        """What other users see: no email or phone; a deleted account shows as "Deleted user"."""
        if self.is_deleted:
            return {"id": self.id, "name": DELETED_NAME, "avatar_url": None, "bio": None,
                    "extra": None, "created_at": self.created_at.isoformat(), "deleted": True}
        return {"id": self.id, "name": self.name, "avatar_url": self.avatar_url, "bio": self.bio,
                "extra": self.extra, "created_at": self.created_at.isoformat(), "deleted": False}


def _iso(moment: Any) -> str | None:
    return None if moment is None else cast(str, moment.isoformat())


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


def check_password_policy(password: str) -> None:
    size = len(password.encode("utf-8", "surrogatepass"))
    if size < PASSWORD_MIN or size > PASSWORD_MAX:
        raise InvalidParameterError(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes long"
        )
    if _LONE_SURROGATE.search(password):
        raise InvalidParameterError("password must be valid Unicode text")
    if password.isdigit() or password.isalpha():
        raise InvalidParameterError("password must mix letters with digits or symbols")


def has_bad_chars(value: str, allowed: str = "") -> bool:
    """True if `value` holds a control character (Unicode category Cc: NUL, newline, escape,
    DEL, ...) other than those in `allowed`, or a lone surrogate. Such characters make names
    and ids that look like others, break the logs and lines they are printed in, and some no
    database can store (NUL in PostgreSQL text; a lone surrogate is not UTF-8 at all)."""
    return bool(_LONE_SURROGATE.search(value)) or any(
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


def _normalise_email(email: str) -> str:
    # The address pattern refuses whitespace but not other control characters such as NUL.
    return normalise_email(check_text(email, "email"))


def _normalise_phone(phone: str) -> str:
    phone = re.sub(r"[\s()-]", "", check_text(phone, "phone"))
    # fullmatch: `$` would also accept a trailing newline.
    if not _PHONE_RE.fullmatch(phone):
        raise InvalidParameterError(f"phone {phone!r} is not valid")
    return phone


async def hash_password(password: str, rounds: int) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(rounds))
    return hashed.decode()


async def verify_password(password: str, hashed: str) -> bool:
    # A lone surrogate cannot be encoded strictly; no stored password has one, so the bytes it
    # gives here match nothing. Over 72 bytes bcrypt raises; no stored password is that long
    # (check_password_policy), so such a password is refused, after the same work as any.
    raw = password.encode("utf-8", "surrogatepass")
    matched = await asyncio.to_thread(bcrypt.checkpw, raw[:PASSWORD_MAX], hashed.encode())
    return matched and len(raw) <= PASSWORD_MAX


async def _dummy_hash(rounds: int) -> str:
    """A hash of a random password at this bcrypt cost, made once on first use. Checking a
    password against it makes "no such user" cost what "wrong password" costs, so login
    timing does not tell which ids exist."""
    hashed = _DUMMY_HASHES.get(rounds)
    if hashed is None:
        hashed = _DUMMY_HASHES.setdefault(
            rounds, await hash_password(secrets.token_urlsafe(24), rounds))
    return hashed


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
    email = _normalise_email(email) if email else None
    phone = _normalise_phone(phone) if phone else None
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


async def find_login(login: str) -> User | None:
    """The user, live or deleted (not purged), whose id, email or phone is `login`."""
    login = login.strip()
    if not login or has_bad_chars(login):
        return None  # nobody's id, email or phone; a NUL must not reach the database
    if "@" in login and await User.filter(email=login.lower()).exists():
        return await User.get(email=login.lower())
    user = await User.get_or_none(id=login)
    phone = re.sub(r"[\s()-]", "", login)
    if user is None and _PHONE_RE.fullmatch(phone):
        user = await User.get_or_none(phone=phone)
    return user


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
    hashed = user.password_hash if user else await _dummy_hash(rules.bcrypt_rounds)
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


def _check_avatar_url(url: str) -> str:
    parts = urlsplit(url)
    if (len(url) > AVATAR_URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc
            or any(c.isspace() for c in url) or has_bad_chars(url)):
        raise InvalidParameterError(
            f"avatar_url must be an http(s) URL of at most {AVATAR_URL_MAX} characters"
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
        return "\0" in value or bool(_LONE_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_unstorable(k) or _has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable(v) for v in value)
    return False


PUBLIC_FIELDS = frozenset({"name", "avatar_url", "bio", "extra"})


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
        new_email = _normalise_email(changes["email"]) if changes["email"] else None
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


async def check_code_request(email: str, purpose: str) -> str:
    """Who may be sent a code: the normalised email, or UserExistsError when it is pointless
    (registering an address a live account holds; moving to an address anyone holds)."""
    email = _normalise_email(email)
    holder = await User.get_or_none(email=email)
    if holder is not None and (purpose == "change_email" or (
            purpose == "register" and not holder.is_deleted)):
        raise UserExistsError("a user with this email already exists")
    return email


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

