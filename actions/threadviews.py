"""What a member sees of their threads, and their own settings of each (docs/threads.md): the
thread list (a page at a time, one SQL statement, models/threadlist.py), one thread's details,
its members, the direct thread with someone, a member's own settings and accepting a message
request.

Changing one's settings publishes `thread_settings` on the user's own topic (their other
devices); a change of `recv_msg_opt` to or from 2 also tells the broker, which stops (or
resumes) delivering the thread to them at once. Nothing here takes a timeline entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from actions.context import Context
from actions.timeline import entry_event
from contract.events import ThreadSettingsEvent
from contract.http import MemberSettings
from contract.threads import (
    Geo,
    MemberView,
    Participant,
    ThreadInfo,
    ThreadListItem,
    ThreadSettings,
)
from models.clock import utcnow
from models.readstate import accept_request as store_acceptance
from models.readstate import update_settings
from models.thread import Member, Role, Roster, ThreadKind, get_roster
from models.threadlist import ListedThread, ListQuery, direct_thread_id, list_threads


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _until(moment: datetime | None, now: datetime) -> str | None:
    """A mute's end, or None once it passed (a past mute is no mute)."""
    return _iso(moment) if moment is not None and moment > now else None


def _item(t: ListedThread) -> ThreadListItem:
    return ThreadListItem(
        thread_id=t.thread_id, type=t.kind, name=t.name, status=t.status,
        membership=t.membership, role=t.role, max_seq=t.max_seq,
        read_seq=t.read_seq, unread=t.unread, unread_mentions=t.unread_mentions,
        last_message=entry_event(t.last_entry) if t.last_entry else None,
        last_activity_at=t.last_activity_at.isoformat(), pinned=t.pinned,
        archived=t.archived, marked_unread=t.marked_unread,
        muted_until=_iso(t.muted_until), recv_msg_opt=t.recv_msg_opt,
    )


async def threads_of(user_id: str, query: ListQuery | None = None) -> list[ThreadListItem]:
    """A page of the user's threads, pinned first, then newest activity (filters, page size
    and `after`: ListQuery)."""
    return [_item(t) for t in await list_threads(user_id, query or ListQuery())]


async def thread_info(user_id: str, thread_id: str) -> ThreadInfo:
    """A thread as its members see it (ThreadNotFoundError or NotAMemberError to others)."""
    return info_of(await get_roster(thread_id, user_id))


async def direct_thread(user_id: str, other_id: str) -> ThreadInfo:
    """The user's direct thread with `other_id` (ThreadNotFoundError when there is none)."""
    return await thread_info(user_id, await direct_thread_id(user_id, other_id))


async def members_of(user_id: str, thread_id: str) -> list[MemberView]:
    """A thread's current members, longest-serving first, for a member."""
    roster = await get_roster(thread_id, user_id)
    now = utcnow()
    return [MemberView(
        user_id=m.user_id, role=m.role.value, nickname=m.nickname,
        joined_at=m.joined_at.isoformat(), muted_until=_until(m.muted_until, now),
        is_bot=m.user_id in roster.bot_ids,
    ) for m in roster.members]


def info_of(roster: Roster) -> ThreadInfo:
    thread, members = roster.thread, roster.members
    now = utcnow()
    geo = (Geo(lat=thread.lat, lng=thread.lng)
           if thread.kind == ThreadKind.ROOM and thread.lat is not None and thread.lng is not None
           else None)
    return ThreadInfo(
        thread_id=thread.id, type=thread.kind.value, name=thread.name,
        owner_id=thread.owner_id,
        admin_ids=[m.user_id for m in members if m.role == Role.ADMIN],
        participants=[Participant(
            user_id=m.user_id, role=m.role.value, nickname=m.nickname,
            joined_at=m.joined_at.isoformat(), read_seq=m.read_seq,
            delivered_seq=m.delivered_seq, muted_until=_until(m.muted_until, now),
            is_bot=m.user_id in roster.bot_ids,
        ) for m in members],
        max_seq=thread.last_seq, created_at=thread.created_at.isoformat(),
        image_url=thread.image_url, color=thread.color, emoji=thread.emoji,
        description=thread.description, status=thread.status.value,
        settings=ThreadSettings(
            history_visibility=thread.history_visibility.value,
            join_approval=thread.join_approval, admins_only_send=thread.admins_only_send,
            visibility=thread.visibility.value,
        ),
        nicknames={m.user_id: m.nickname for m in members if m.nickname},
        capacity=thread.capacity if thread.kind == ThreadKind.ROOM else None,
        geo=geo,
    )


def settings_of(member: Member) -> MemberSettings:
    return MemberSettings(
        pinned=member.pinned, archived=member.archived, marked_unread=member.marked_unread,
        muted_until=_until(member.notify_muted_until, utcnow()),
        recv_msg_opt=member.recv_msg_opt,
    )


async def change_settings(
    ctx: Context, user_id: str, thread_id: str, changes: Mapping[str, Any]
) -> MemberSettings:
    """PATCH /api/threads/{id}/settings: the member's own settings, for themselves."""
    update = await update_settings(user_id, thread_id, changes)
    settings = settings_of(update.member)
    if update.delivery_changed:
        await ctx.receivers_changed(thread_id, f"{user_id} changed recv_msg_opt of {thread_id}")
    await ctx.publish([(ctx.topics.user(user_id), ThreadSettingsEvent(
        type="thread_settings", thread_id=thread_id, settings=settings))])
    return settings


async def accept_request(user_id: str, thread_id: str) -> ThreadInfo:
    """The recipient accepts a message request: the thread joins their usual list and its
    unread count. Answers the thread."""
    await store_acceptance(user_id, thread_id)
    return await thread_info(user_id, thread_id)
