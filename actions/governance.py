"""Governing a thread, the use cases behind PATCH/DELETE /api/threads/{id} and its admins, owner,
mutes, nicknames and announcements routes (docs/design.md section 8).

Each runs one change of models/governance.py or models/announcements_q.py (one transaction),
then publishes the timeline entries it wrote on the thread's topic. Ending a thread also tells
the broker (a dissolved thread and a deleted one have no receivers) and then each former
receiver, on their own topic, with `thread_removed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from actions.context import Context
from actions.timeline import entry_event
from contract.events import ThreadRemovedEvent
from contract.governance import (
    AdminsChanged,
    Announcement,
    AnnouncementPosted,
    AnnouncementRemoved,
    Mute,
    MutesChanged,
    NicknameSet,
    OwnerChanged,
    ThreadEnded,
    ThreadUpdated,
    Unmuted,
)
from contract.threads import ThreadSettings
from models import announcements_q, governance, govrules
from models.announcement import Announcement as AnnouncementRow
from models.message import Message
from models.thread import ThreadKind


async def _publish_entries(ctx: Context, thread_id: str, entries: Sequence[Message]) -> None:
    await ctx.publish([(ctx.topics.thread(thread_id), entry_event(e)) for e in entries])


def _seq(entries: Sequence[Message]) -> int | None:
    return entries[0].seq if entries else None


async def update_thread(ctx: Context, actor_id: str, thread_id: str, looks: Mapping[str, Any],
                        settings: Mapping[str, Any] | None) -> ThreadUpdated:
    change = await governance.update_thread(actor_id, thread_id, looks, settings)
    await _publish_entries(ctx, thread_id, change.entries)
    t = change.thread
    return ThreadUpdated(
        thread_id=t.id, name=t.name, image_url=t.image_url, color=t.color, emoji=t.emoji,
        description=t.description,
        settings=ThreadSettings(history_visibility=t.history_visibility.value,
                                    join_approval=t.join_approval,
                                    admins_only_send=t.admins_only_send,
                                    visibility=t.visibility.value),
        seqs=[e.seq for e in change.entries],
    )


async def end_thread(ctx: Context, actor_id: str, thread_id: str) -> ThreadEnded:
    """Dissolve a group or room, or delete a direct thread for both of its members."""
    ending = await governance.end_thread(actor_id, thread_id)
    if ending.entry is not None:  # the members, still subscribed, see why the thread stops
        await _publish_entries(ctx, thread_id, [ending.entry])
    await ctx.receivers_changed(thread_id, f"thread {thread_id} ended")
    reason: Literal["deleted", "dissolved"] = (
        "deleted" if ending.thread.kind == ThreadKind.DIRECT else "dissolved")
    await ctx.publish([
        (ctx.topics.user(uid), ThreadRemovedEvent(type="thread_removed", thread_id=thread_id,
                                                  by=actor_id, reason=reason))
        for uid in ending.member_ids
    ])
    return ThreadEnded(thread_id=thread_id, status=reason,
                       seq=ending.entry.seq if ending.entry else None)


async def add_admins(ctx: Context, actor_id: str, thread_id: str, user_ids: Sequence[str],
                     ) -> AdminsChanged:
    change = await governance.add_admins(actor_id, thread_id, user_ids)
    entries = [change.entry] if change.entry else []
    await _publish_entries(ctx, thread_id, entries)
    return AdminsChanged(thread_id=thread_id, added=change.added, removed=[],
                         admin_ids=change.admin_ids, seq=_seq(entries))


async def remove_admin(ctx: Context, actor_id: str, thread_id: str, user_id: str,
                       ) -> AdminsChanged:
    change = await governance.remove_admin(actor_id, thread_id, user_id)
    entries = [change.entry] if change.entry else []
    await _publish_entries(ctx, thread_id, entries)
    return AdminsChanged(thread_id=thread_id, added=[], removed=change.removed,
                         admin_ids=change.admin_ids, seq=_seq(entries))


async def transfer_owner(ctx: Context, actor_id: str, thread_id: str, user_id: str,
                         ) -> OwnerChanged:
    change = await governance.transfer_owner(actor_id, thread_id, user_id)
    await _publish_entries(ctx, thread_id, change.entries)
    return OwnerChanged(thread_id=thread_id, owner_id=user_id, previous_owner_id=actor_id,
                        seq=change.entries[0].seq)


async def mute(ctx: Context, actor_id: str, thread_id: str, user_ids: Sequence[str],
               until: str | None) -> MutesChanged:
    change, mutes = await governance.mute(actor_id, thread_id, user_ids, until)
    await _publish_entries(ctx, thread_id, change.entries)
    return MutesChanged(
        thread_id=thread_id,
        muted=[Mute(user_id=uid, until=govrules.mute_until_text(end)) for uid, end in mutes],
        seqs=[e.seq for e in change.entries],
    )


async def unmute(ctx: Context, actor_id: str, thread_id: str, user_id: str) -> Unmuted:
    change = await governance.unmute(actor_id, thread_id, user_id)
    await _publish_entries(ctx, thread_id, change.entries)
    return Unmuted(thread_id=thread_id, user_id=user_id, seq=_seq(change.entries))


async def set_nickname(ctx: Context, actor_id: str, thread_id: str, user_id: str,
                       nickname: str | None) -> NicknameSet:
    change = await governance.set_nickname(actor_id, thread_id, user_id, nickname)
    await _publish_entries(ctx, thread_id, change.entries)
    return NicknameSet(thread_id=thread_id, user_id=user_id,
                       nickname=govrules.check_nickname(nickname), seq=_seq(change.entries))


def _announcement(row: AnnouncementRow) -> Announcement:
    return Announcement(announcement_id=row.id, thread_id=row.thread_id, author_id=row.author_id,
                        content=row.content, created_at=row.created_at.isoformat())


async def announcements(viewer_id: str, thread_id: str) -> list[Announcement]:
    return [_announcement(r) for r in await announcements_q.list_announcements(viewer_id,
                                                                               thread_id)]


async def post_announcement(ctx: Context, actor_id: str, thread_id: str, content: str,
                            ) -> AnnouncementPosted:
    posted = await announcements_q.post_announcement(actor_id, thread_id, content)
    await _publish_entries(ctx, thread_id, [posted.entry])
    return AnnouncementPosted(**dict(_announcement(posted.announcement)), seq=posted.entry.seq)


async def remove_announcement(ctx: Context, actor_id: str, thread_id: str, announcement_id: int,
                              ) -> AnnouncementRemoved:
    entry = await announcements_q.remove_announcement(actor_id, thread_id, announcement_id)
    await _publish_entries(ctx, thread_id, [entry])
    return AnnouncementRemoved(thread_id=thread_id, announcement_id=announcement_id, seq=entry.seq)
