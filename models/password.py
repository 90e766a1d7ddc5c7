"""Passwords: the policy a new one obeys, bcrypt hashing, and checking one against a hash.

Passwords are bcrypt hashes, never stored plain. bcrypt is deliberately slow (tens to hundreds of
ms), so hashing runs in a worker thread and never blocks the event loop that also carries the
broker and the bridge. Which account a password belongs to is not this module's business.
"""

from __future__ import annotations

import asyncio
import secrets

import bcrypt

from contract.errors import InvalidParameterError
from models.user import LONE_SURROGATE

PASSWORD_MIN = 8
PASSWORD_MAX = 72  # bcrypt ignores bytes past 72; refuse rather than silently truncate
# Hashes of a random password, one per bcrypt cost, made on first use (`dummy_hash`).
_DUMMY_HASHES: dict[int, str] = {}


def check_password_policy(password: str) -> None:
    size = len(password.encode("utf-8", "surrogatepass"))
    if size < PASSWORD_MIN or size > PASSWORD_MAX:
        raise InvalidParameterError(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes long"
        )
    if LONE_SURROGATE.search(password):
        raise InvalidParameterError("password must be valid Unicode text")
    if password.isdigit() or password.isalpha():
        raise InvalidParameterError("password must mix letters with digits or symbols")


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


async def dummy_hash(rounds: int) -> str:
    """A hash of a random password at this bcrypt cost, made once on first use. Checking a
    password against it makes "no such user" cost what "wrong password" costs, so login
    timing does not tell which ids exist."""
    hashed = _DUMMY_HASHES.get(rounds)
    if hashed is None:
        hashed = _DUMMY_HASHES.setdefault(
            rounds, await hash_password(secrets.token_urlsafe(24), rounds))
    return hashed
