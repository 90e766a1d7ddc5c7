"""Read positions and what a user's thread list and sync view show.

Unread = timeline messages (not events) from others with seq above the member's read_seq.
read_seq only moves forward and never past the thread's last seq.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from tortoise.functions import Count

from contract.errors import NotAMemberError
from models.clock import utcnow
from models.message import EntryKind, Message, last_entries
from models.thread import Member, Thread, get_membership


@dataclass(frozen=True)
class ReadMark:
    thread_id: str
    user_id: str
    read_seq: int
    advanced: bool
    at: datetime = field(default_factory=utcnow)


async def mark_read(user_id: str, thread_id: str, seq: int) -> ReadMark:
    member = await get_membership(thread_id, user_id)
    thread = await Thread.get(id=thread_id)
    target = min(seq, thread.last_seq)
    updated = await Member.filter(id=member.id, read_seq__lt=target).update(read_seq=target)
    if updated:
        return ReadMark(thread_id, user_id, target, True)
    current = await Member.filter(id=member.id).values_list("read_seq", flat=True)
    if not current:  # removed meanwhile
        raise NotAMemberError(thread_id)
    return ReadMark(thread_id, user_id, cast(int, current[0]), False)


async def _unread_counts(user_id: str, members: list[Member]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for member in members:
        if member.read_seq >= member.thread.last_seq:
            counts[member.thread_id] = 0
            continue
        rows = await (
            Message.filter(
                thread_id=member.thread_id,
                kind=EntryKind.MESSAGE,
                seq__gt=member.read_seq,
                # Not past the max_seq this answer reports, though writers go on meanwhile.
                seq__lte=member.thread.last_seq,
            )
            .exclude(sender_id=user_id)
            .annotate(n=Count("id"))
            .values_list("n", flat=True)
        )
        counts[member.thread_id] = cast(int, rows[0]) if rows else 0
    return counts


async def _memberships(user_id: str) -> list[Member]:
    return list(
        await Member.filter(user_id=user_id)
        .select_related("thread")
        .order_by("-thread__last_activity_at")
    )


@dataclass(frozen=True)
class Counts:
    thread_id: str
    max_seq: int
    read_seq: int
    unread: int


async def sync_state(user_id: str) -> list[Counts]:
    """Per thread: max_seq, read_seq and unread, newest activity first."""
    members = await _memberships(user_id)
    unread = await _unread_counts(user_id, members)
    return [Counts(m.thread_id, m.thread.last_seq, m.read_seq, unread[m.thread_id])
            for m in members]


@dataclass(frozen=True)
class ThreadListing:
    """One thread in a user's list: their membership (with its thread loaded), unread count and
    the thread's newest timeline entry, if any."""

    member: Member
    unread: int
    last_entry: Message | None


async def list_threads(user_id: str) -> list[ThreadListing]:
    """The user's threads with their last entry and unread count, newest activity first."""
    members = await _memberships(user_id)
    unread = await _unread_counts(user_id, members)
    last = await last_entries([m.thread_id for m in members])
    return [ThreadListing(m, unread[m.thread_id], last.get(m.thread_id)) for m in members]
