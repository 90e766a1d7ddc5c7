"""Read positions, and each member's own settings of a thread (docs/threads.md): pinned,
archived, marked unread, notifications muted until, recv_msg_opt, and accepting a message
request.

read_seq only moves forward and never past the thread's last seq; reading also clears
`marked_unread` (the mark shows a thread as unread until the next read). The counts of
GET /api/sync are one statement (models/threadlist.py). A member's settings are theirs alone:
any current member changes their own, nobody else's; they take no timeline entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from tortoise.transactions import in_transaction

from contract.errors import InvalidParameterError, NotAMemberError
from models.clock import utcnow
from models.thread import Member, RecvOpt, Thread, get_membership
from models.threadlist import Counts, thread_counts
from models.user import has_bad_chars


@dataclass(frozen=True)
class ReadMark:
    thread_id: str
    user_id: str
    read_seq: int
    advanced: bool
    # The member's row after the read, when it cleared their `marked_unread` (their other
    # devices are told); None otherwise.
    unmarked: Member | None = None
    at: datetime = field(default_factory=utcnow)


async def mark_read(user_id: str, thread_id: str, seq: int) -> ReadMark:
    member = await get_membership(thread_id, user_id)
    last = await Thread.filter(id=thread_id).values_list("last_seq", flat=True)
    target = min(seq, cast(int, last[0]) if last else 0)
    advanced = bool(await Member.filter(id=member.id, read_seq__lt=target).update(
        read_seq=target, marked_unread=False))
    # Reading clears the mark even when the read mark stays where it was.
    cleared = (advanced and member.marked_unread) or bool(
        await Member.filter(id=member.id, marked_unread=True).update(marked_unread=False))
    fresh = await Member.filter(id=member.id).first()
    if fresh is None:  # removed meanwhile
        raise NotAMemberError(thread_id)
    return ReadMark(thread_id, user_id, fresh.read_seq, advanced, fresh if cleared else None)


async def sync_state(user_id: str) -> list[Counts]:
    """Per thread: max_seq, read_seq and unread, newest activity first (one statement)."""
    return await thread_counts(user_id)


# --- a member's own settings ---------------------------------------------------------------

SETTINGS = ("pinned", "archived", "marked_unread", "muted_until", "recv_msg_opt")
_FLAGS = ("pinned", "archived", "marked_unread")
_TIME_TEXT_MAX = 64


def parse_until(value: Any) -> datetime | None:
    """`muted_until`: null, or an ISO 8601 date-time (no offset: UTC)."""
    if value is None:
        return None
    if (not isinstance(value, str) or len(value) > _TIME_TEXT_MAX or has_bad_chars(value)):
        raise InvalidParameterError("muted_until must be an ISO 8601 date-time or null")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidParameterError(
            "muted_until must be an ISO 8601 date-time, e.g. 2030-01-31T08:00:00Z, or null"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _columns(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The Member columns to write, each value checked (InvalidParameterError otherwise)."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise InvalidParameterError(f"unknown setting(s): {', '.join(unknown)}")
    if not changes:
        raise InvalidParameterError(f"name at least one of: {', '.join(SETTINGS)}")
    columns: dict[str, Any] = {}
    for name in _FLAGS:
        if name in changes:
            if not isinstance(changes[name], bool):
                raise InvalidParameterError(f"{name} must be true or false")
            columns[name] = changes[name]
    if "recv_msg_opt" in changes:
        opt = changes["recv_msg_opt"]
        if isinstance(opt, bool) or opt not in tuple(RecvOpt):
            raise InvalidParameterError(
                "recv_msg_opt must be 0 (normal), 1 (no notifications) or 2 (not delivered)")
        columns["recv_msg_opt"] = int(opt)
    if "muted_until" in changes:
        columns["notify_muted_until"] = parse_until(changes["muted_until"])
    return columns


@dataclass(frozen=True)
class SettingsUpdate:
    member: Member  # after the change
    delivery_changed: bool  # recv_msg_opt moved to or from 2: the broker must be told


async def update_settings(
    user_id: str, thread_id: str, changes: Mapping[str, Any]
) -> SettingsUpdate:
    """Change the member's own settings of a thread (ThreadNotFoundError, NotAMemberError,
    InvalidParameterError)."""
    columns = _columns(changes)
    async with in_transaction() as conn:
        # The row lock orders concurrent changes, so the broker hears them in commit order.
        member = await (Member.filter(thread_id=thread_id, user_id=user_id).using_db(conn)
                        .select_for_update().first())
        if member is None:
            member = await get_membership(thread_id, user_id, conn)  # raises the right error
        before = member.recv_msg_opt
        await Member.filter(id=member.id).using_db(conn).update(**columns)
        fresh = await Member.filter(id=member.id).using_db(conn).first()
    assert fresh is not None  # noqa: S101  # locked above, in the same transaction
    delivered = RecvOpt.NOT_DELIVERED
    return SettingsUpdate(fresh, (before == delivered) != (fresh.recv_msg_opt == delivered))


async def accept_request(user_id: str, thread_id: str) -> None:
    """The recipient of a message request accepts it: the thread joins their usual list.
    InvalidParameterError when the thread is not a request on their side."""
    member = await get_membership(thread_id, user_id)
    if not await Member.filter(id=member.id, is_request=True).update(is_request=False):
        raise InvalidParameterError(f"thread {thread_id} is not a message request to you")
