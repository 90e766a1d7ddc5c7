"""Read positions, and each member's own settings of a thread (docs/threads.md): pinned,
archived, marked unread, notifications muted until, recv_msg_opt, and accepting a message
request.

read_seq and delivered_seq only move forward and never past the thread's last seq; reading
also moves delivered_seq up to it (what was read was delivered) and clears `marked_unread` (the
mark shows a thread as unread until the next read). The counts of
GET /api/sync are one statement (models/threadlist.py). A member's settings are theirs alone:
any current member changes their own, nobody else's; they take no timeline entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from tortoise.expressions import Case, F, Value, When
from tortoise.transactions import in_transaction

from contract.errors import InvalidParameterError, NotAMemberError
from models.clock import utcnow
from models.sqldialect import SqlDialect
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
    # Reading implies delivery: delivered_seq follows read_seq in the same write.
    advanced = bool(await Member.filter(id=member.id, read_seq__lt=target).update(
        read_seq=target, marked_unread=False, delivered_seq=Case(
            # tortoise's hints omit Value, which it resolves like any expression.
            When(delivered_seq__lt=target, then=cast(Any, Value(target))),
            default=F("delivered_seq"))))
    # Reading clears the mark even when the read mark stays where it was (the row read above
    # says whether there is one: most reads skip this second write).
    cleared = member.marked_unread and (advanced or bool(
        await Member.filter(id=member.id, marked_unread=True).update(marked_unread=False)))
    fresh = await Member.filter(id=member.id).first()
    if fresh is None:  # removed meanwhile
        raise NotAMemberError(thread_id)
    return ReadMark(thread_id, user_id, fresh.read_seq, advanced, fresh if cleared else None)


@dataclass(frozen=True)
class DeliveryMark:
    thread_id: str
    user_id: str
    delivered_seq: int
    advanced: bool


async def mark_delivered(user_id: str, thread_id: str, seq: int) -> DeliveryMark:
    """Move the member's delivered mark up to `seq`, capped at the thread's last seq; never
    back (ThreadNotFoundError, NotAMemberError)."""
    member = await get_membership(thread_id, user_id)
    last = await Thread.filter(id=thread_id).values_list("last_seq", flat=True)
    target = min(seq, cast(int, last[0]) if last else 0)
    advanced = bool(await Member.filter(id=member.id, delivered_seq__lt=target).update(
        delivered_seq=target))
    fresh = await Member.filter(id=member.id).values_list("delivered_seq", flat=True)
    if not fresh:  # removed meanwhile
        raise NotAMemberError(thread_id)
    return DeliveryMark(thread_id, user_id, cast(int, fresh[0]), advanced)


@dataclass(frozen=True)
class ReadAll:
    moved: list[tuple[str, int]]  # (thread_id, read_seq) of each thread whose mark moved
    unmarked: list[Member]  # rows whose `marked_unread` the read cleared, after the read
    at: datetime = field(default_factory=utcnow)


# Every thread of the user at once: its read mark to the thread's last seq, delivered too.
_READ_ALL = """
UPDATE thread_member SET read_seq = t.last_seq,
    delivered_seq = CASE WHEN thread_member.delivered_seq < t.last_seq
                         THEN t.last_seq ELSE thread_member.delivered_seq END
FROM thread t
WHERE t.id = thread_member.thread_id AND thread_member.user_id = {user}
  AND thread_member.read_seq < t.last_seq
RETURNING thread_member.thread_id, thread_member.read_seq
"""


async def mark_all_read(user_id: str) -> ReadAll:
    """Mark every thread of the user read up to its last seq (seed 000 markAsReadAll) and
    clear their `marked_unread` marks: four statements, however many threads."""
    async with in_transaction() as conn:
        flagged = await Member.filter(user_id=user_id, marked_unread=True).using_db(conn)\
            .values_list("id", flat=True)
        dialect = SqlDialect(conn)
        dialect.params.append(user_id)
        # The dict form fetches RETURNING rows on asyncpg too (execute_query drops an UPDATE's).
        rows = await conn.execute_query_dict(_READ_ALL.format(user=dialect.numbered(1)),
                                             dialect.params)
        unmarked: list[Member] = []
        if flagged:
            await Member.filter(id__in=list(flagged)).using_db(conn).update(marked_unread=False)
            unmarked = list(await Member.filter(id__in=list(flagged)).using_db(conn))
    moved = sorted((str(row["thread_id"]), int(row["read_seq"])) for row in rows)
    return ReadAll(moved, unmarked)


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
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends by its offset
        raise InvalidParameterError("muted_until is out of range") from None


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
