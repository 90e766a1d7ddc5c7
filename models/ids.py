"""Identifier types and the one rule ids obey: safe to embed in an MQTT topic level."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, NewType

from pydantic import StrictStr, StringConstraints

UserId = NewType("UserId", str)
ThreadId = NewType("ThreadId", str)
MessageId = NewType("MessageId", str)
SessionId = NewType("SessionId", str)

# Letters, digits, '_', '-', '.' only: never '/', '+', '#', whitespace or NUL (DESIGN.md s.3), nor
# '@' (an id must not look like someone's email: login takes either),
# and never a leading '$' (the broker's own topics) or a leading "mqim-" (service accounts).
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
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


def new_session_id() -> SessionId:
    return SessionId(secrets.token_hex(12))


# The same rules as pydantic field types, for commands and request bodies: a bad id is refused
# while parsing (1001), before it can reach a query or a topic.
IdField = Annotated[StrictStr, StringConstraints(pattern=f"^(?:{ID_PATTERN})$")]
# Chosen by clients: any text of 1-64 characters but control characters (C0, DEL, C1).
CLIENT_MSG_ID_MAX = 64
ClientMsgIdField = Annotated[
    StrictStr, StringConstraints(pattern=rf"^[^\x00-\x1f\x7f-\x9f]{{1,{CLIENT_MSG_ID_MAX}}}$")
]
