"""Identifier types and the one rule ids obey: safe to embed in an MQTT topic level."""

from __future__ import annotations

import re
import secrets
from typing import NewType

from contract.fields import ID_PATTERN

UserId = NewType("UserId", str)
ThreadId = NewType("ThreadId", str)
MessageId = NewType("MessageId", str)
SessionId = NewType("SessionId", str)

# Letters, digits, '_', '-', '.' only (contract/fields.py): never '/', '+', '#', whitespace or
# NUL (docs/design.md section 3), nor '@' (an id must not look like someone's email: login takes
# either), and never a leading '$' (the broker's own topics) or "mqim-" (service accounts).
_ID_RE = re.compile(ID_PATTERN)
RESERVED_PREFIX = "mqim-"
# Path words of routes that also take an id (/api/friends/groups, /api/users/me, ...).
RESERVED_IDS = frozenset({"me", "groups", "requests", "sessions", "blocks", "admin"})


def is_valid_id(value: str) -> bool:
    return (
        bool(_ID_RE.fullmatch(value))  # not match + '$', which takes "alice\n"
        and not value.lower().startswith(RESERVED_PREFIX)
        and value.lower() not in RESERVED_IDS
    )


def new_user_id() -> UserId:
    return UserId("u" + secrets.token_hex(8))


def new_thread_id() -> ThreadId:
    return ThreadId("t" + secrets.token_hex(8))


def new_message_id() -> MessageId:
    return MessageId("m" + secrets.token_hex(10))


def new_message_ids(n: int) -> list[MessageId]:
    """`n` ids as `new_message_id` makes them, from one read of the system's randomness (a
    batch's messages: one syscall instead of one each)."""
    text = secrets.token_hex(10 * n)
    return [MessageId("m" + text[i:i + 20]) for i in range(0, 20 * n, 20)]


def new_session_id() -> SessionId:
    return SessionId(secrets.token_hex(12))

